package tokenizer

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"github.com/deltactl/deltactl/internal/testutil"
)

// handCorpus holds texts chosen for the rules the regexes and the added
// tokens get wrong most easily.
var handCorpus = []string{
	"",
	" ",
	"Hello world",
	"Hello, world! How are you today?",
	"  leading spaces and trailing spaces   ",
	"tabs\tand\t\ttabs\t",
	"line one\nline two\n\nline four\n",
	"windows\r\nline\r\nends\r\n",
	"mixed \r\n \n\r  \t\n   end",
	"trailing newline\n",
	"\n\n\nleading newlines",
	"multiple     spaces     between     words",
	"   ",
	"\t\n \r\n\t ",
	"1234567890",
	"3.14159265358979323846264338327950288419716939937510",
	"The year 2024 had 366 days; 1,000,000 people; 12345 and 1 2 3.",
	"phone: +1 (555) 123-4567, zip 90210-1234",
	"I'm can't won't they'll we've she'd it's you're",
	"I'M CAN'T WON'T THEY'LL WE'VE SHE'D IT'S YOU'RE",
	"ThEy'Ll We'Ve I'M It'S don'T",
	"'s 't 're 've 'm 'll 'd 'x '",
	"rock 'n' roll, 'quoted', ''double''",
	"Don’t use curly ’quotes’ — or “double” ones…",
	"naïve café résumé coöperate façade",
	"Straße, Øresund, Łódź, İstanbul, ǅ",
	"Здравствуйте, как дела? Я говорю по-русски.",
	"Γειά σου Κόσμε! ΟΔΟΣ ΣΟΦΟΣ",
	"שלום עולם, مرحبا بالعالم",
	"你好，世界！我爱自然语言处理。",
	"日本語のテキストとカタカナ、ひらがな。",
	"한국어 텍스트도 있습니다.",
	"नमस्ते दुनिया, हिन्दी पाठ",
	"สวัสดีชาวโลก ภาษาไทย",
	"ሰላም ዓለም",
	"Ελληνικά ١٢٣ ٤٥٦ arabic digits ۱۲۳ ߀ ௧௨௩",
	"emoji 🙂😀🎉 and flags 🇫🇷🇯🇵",
	"family 👨‍👩‍👧‍👦 and 👩🏽‍💻 with ZWJ",
	"skin tones 👍🏻👍🏿 and keycap 1️⃣ #️⃣",
	"zero\u200bwidth\u200cjoiner\u200d and bom \ufeff here",
	"nbsp\u00a0here and\u2003em space and\u3000ideographic",
	"next line\u0085char and line\u2028sep\u2029para",
	"func main() {\n\tfmt.Println(\"hello\")\n}\n",
	"def f(x):\n    return x**2  # square\n\n\nclass A:\n    pass\n",
	"for (int i = 0; i < n; ++i) { a[i] = b[i] * 2; }",
	"<div class=\"x\">&nbsp;&amp;</div>",
	"SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';",
	"https://example.com/path?q=1&r=two#frag",
	"user@example.com, @handle #hashtag $100 50% ^caret ~tilde `tick`",
	"!!!??? ... --- ___ *** +++ === ||| \\\\\\ ///",
	"a\u0301e\u0301i\u0301 (NFD accents)",
	norm.NFD.String("Ångström résumé Việt Nam 한국어"),
	"ﬁ ligature ① circled ｆｕｌｌｗｉｄｔｈ ²³ ½",
	"<|begin_of_text|>Hello<|end_of_text|>",
	"<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
	"<s>[INST] What is 2+2? [/INST] 4</s>",
	"text <s> in the middle </s> of <unk> words",
	"<|endoftext|><|endoftext|>",
	"<|im_start|><|im_start|>x<|im_end|>",
	"almost special <|im_star|> <|begin_of_tex|> <s",
	"<0x41> looks like a byte token",
	"▁ already has the meta space ▁▁ twice",
	"a",
	"A",
	"😀",
	"\u0000 null and \u0001 control \u007f del",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"Supercalifragilisticexpialidocious antidisestablishmentarianism",
	"CamelCaseIdentifier snake_case_identifier kebab-case-identifier",
	"x=1;y=2;z=x+y;print(z)",
	"１２３ fullwidth digits",
	"I.B.M. U.S.A. e.g. i.e. etc.",
}

// longCorpus adds long and generated texts.
func longCorpus() []string {
	var out []string
	out = append(out, strings.Repeat("9", 1000))
	out = append(out, strings.Repeat("1234567890", 57))
	out = append(out, strings.Repeat(" ", 300))
	out = append(out, strings.Repeat("\n", 50)+"x")
	out = append(out, strings.Repeat("ab ", 500))
	out = append(out, strings.Repeat("🙂", 200))
	out = append(out, strings.Repeat("中文", 300))
	out = append(out, strings.Repeat("The quick brown fox jumps over the lazy dog. ", 60))
	return out
}

// sharedCorpus reads real text from ../shared/data/text: tiny-shakespeare
// paragraphs, GSM8K problems and answers, Banking77 questions.
func sharedCorpus(t *testing.T) []string {
	var out []string
	raw, err := os.ReadFile(testutil.SharedData(t, "text/tinyshakespeare/input.txt"))
	if err != nil {
		t.Fatal(err)
	}
	paras := strings.Split(string(raw), "\n\n")
	for i := 0; i < len(paras) && len(out) < 150; i += 53 {
		out = append(out, paras[i])
	}
	f, err := os.Open(testutil.SharedData(t, "text/gsm8k/test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 0; sc.Scan() && n < 80; n++ {
		var rec struct{ Question, Answer string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec.Question, rec.Answer)
	}
	b, err := os.Open(testutil.SharedData(t, "text/banking77/test.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rows, err := csv.NewReader(b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(rows); i += 40 {
		out = append(out, rows[i][0])
	}
	return out
}

// randomCorpus strings together pieces that sit on the regexes' class
// boundaries (letters, digits, spaces, line breaks, punctuation,
// apostrophes, marks, emoji, special-token look-alikes), from a fixed seed.
func randomCorpus(n int) []string {
	pieces := []string{
		"a", "Z", "é", "ß", "Σ", "я", "中", "ｱ", "ا", "\u0301", "1", "٣", "½", "Ⅻ",
		" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2028", "\u0085", "\ufeff",
		"'", "'s", "'S", "'ll", "'LL", "'re", "’", ".", ",", "!", "?", "(", ")", "-", "_", "#", "$", "\"", "\\", "/",
		"🙂", "👨\u200d👩", "\u200d", "🇫🇷", "▁", "<", ">", "|", "<s>", "</s>", "<|im_end|>", "<|begin_of_text|>",
		"the", "The", "don't", "DON'T", "http://x.y/z?a=1", "42", "1234", "\x00", "\x7f",
	}
	r := rand.New(rand.NewPCG(8, 1))
	out := make([]string, n)
	for i := range out {
		var b strings.Builder
		for k := 1 + r.IntN(12); k > 0; k-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		out[i] = b.String()
	}
	return out
}

// corpus is the parity tests' own texts, several hundred in all (the real
// text of sharedCorpus comes on top where ../shared is present).
func corpus() []string {
	out := append([]string{}, handCorpus...)
	out = append(out, longCorpus()...)
	out = append(out, randomCorpus(300)...)
	// Each hand text also inside a sentence and joined with its neighbour,
	// so boundaries meet other context.
	for i, s := range handCorpus {
		out = append(out, "Before: "+s+" :after")
		if i > 0 {
			out = append(out, handCorpus[i-1]+s)
		}
	}
	return out
}
