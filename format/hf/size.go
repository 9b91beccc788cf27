package hf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize reads a byte size such as "5GB", "500MB", "2GiB", "1.5 GB" or
// "1048576". Decimal units (KB, MB, GB, TB) are powers of 1000 as Hugging
// Face uses them for max_shard_size; binary units (KiB, MiB, GiB, TiB) are
// powers of 1024. Units are case-insensitive and always mean bytes: unlike
// transformers we do not read a lowercase "b" ("5Gb") as bits, which would
// surprise anyone typing "500mb".
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	mult, ok := map[string]float64{
		"": 1, "B": 1,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
	}[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("hf: size %q: want a number and one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB: %w", s, ErrSize)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("hf: size %q is too large: %w", s, ErrSize)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("hf: size %q: %w", s, ErrSize)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("hf: size %q is too large: %w", s, ErrSize)
	}
	return int64(v), nil
}
