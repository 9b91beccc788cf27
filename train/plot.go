package train

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
)

// lossCurvePNG draws the training loss per step (blue) and the evaluation
// losses (red dots) on axes with a few grid lines: a small, dependency-free
// picture of the run. The bytes depend only on the losses.
func lossCurvePNG(losses []float64, evals [][2]float64) ([]byte, error) {
	const W, H, left, right, top, bottom = 480, 300, 40, 12, 12, 28
	pal := color.Palette{
		color.RGBA{255, 255, 255, 255}, // background
		color.RGBA{0, 0, 0, 255},       // axes
		color.RGBA{220, 220, 220, 255}, // grid
		color.RGBA{31, 119, 180, 255},  // train
		color.RGBA{214, 39, 40, 255},   // eval
	}
	img := image.NewPaletted(image.Rect(0, 0, W, H), pal)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range losses {
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			lo, hi = min(lo, l), max(hi, l)
		}
	}
	for _, e := range evals {
		lo, hi = min(lo, e[1]), max(hi, e[1])
	}
	if math.IsInf(lo, 0) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		hi = lo + 1
	}
	lo = max(0, lo-(hi-lo)*0.05)
	n := max(len(losses), 2)
	px := func(step float64) int { return left + int(math.Round(step/float64(n-1)*float64(W-left-right-1))) }
	py := func(l float64) int { return H - bottom - 1 - int(math.Round((l-lo)/(hi-lo)*float64(H-top-bottom-1))) }
	// grid: 4 horizontal lines with tick marks; axes.
	for g := 0; g <= 4; g++ {
		y := py(lo + (hi-lo)*float64(g)/4)
		for x := left; x < W-right; x++ {
			img.SetColorIndex(x, y, 2)
		}
		drawNumber(img, 2, y-3, (lo + (hi-lo)*float64(g)/4), 1)
	}
	for x := left; x < W-right; x++ {
		img.SetColorIndex(x, H-bottom, 1)
	}
	for y := top; y <= H-bottom; y++ {
		img.SetColorIndex(left-1, y, 1)
	}
	drawNumber(img, left, H-bottom+6, 0, 1)
	drawNumber(img, W-right-30, H-bottom+6, float64(len(losses)), 1)
	prevX, prevY := -1, -1
	for i, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			continue
		}
		x, y := px(float64(i)), py(l)
		if prevX >= 0 {
			line(img, prevX, prevY, x, y, 3)
		}
		prevX, prevY = x, y
	}
	for _, e := range evals {
		x, y := px(e[0]-1), py(e[1])
		for dx := -2; dx <= 2; dx++ {
			for dy := -2; dy <= 2; dy++ {
				img.SetColorIndex(x+dx, y+dy, 4)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("train: loss curve: %w", err)
	}
	return buf.Bytes(), nil
}

// line draws a Bresenham line.
func line(img *image.Paletted, x0, y0, x1, y1 int, c uint8) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetColorIndex(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// digits is a 3×5 pixel font for 0-9 and '.'.
var digits = map[rune][5]string{
	'0': {"111", "101", "101", "101", "111"}, '1': {"010", "110", "010", "010", "111"},
	'2': {"111", "001", "111", "100", "111"}, '3': {"111", "001", "111", "001", "111"},
	'4': {"101", "101", "111", "001", "001"}, '5': {"111", "100", "111", "001", "111"},
	'6': {"111", "100", "111", "101", "111"}, '7': {"111", "001", "010", "010", "010"},
	'8': {"111", "101", "111", "101", "111"}, '9': {"111", "101", "111", "001", "111"},
	'.': {"000", "000", "000", "000", "010"},
}

// drawNumber writes v with two decimals (or as an integer if whole) at x, y.
func drawNumber(img *image.Paletted, x, y int, v float64, c uint8) {
	s := fmt.Sprintf("%.2f", v)
	if v == math.Trunc(v) && v >= 10 {
		s = fmt.Sprintf("%d", int(v))
	}
	for _, r := range s {
		g, ok := digits[r]
		if ok {
			for yy, row := range g {
				for xx, ch := range row {
					if ch == '1' {
						img.SetColorIndex(x+xx, y+yy, c)
					}
				}
			}
		}
		x += 4
	}
}
