package merge

import (
	"errors"
	"testing"
)

func TestParseStackMethod(t *testing.T) {
	for _, m := range StackMethods() {
		got, err := ParseStackMethod(string(m))
		if err != nil || got != m {
			t.Errorf("ParseStackMethod(%q) = %q, %v", m, got, err)
		}
	}
	dense := map[StackMethod]bool{StackTIES: true, StackDARELinear: true, StackDARETIES: true, StackMagnitudePrune: true}
	for _, m := range StackMethods() {
		if m.Dense() != dense[m] {
			t.Errorf("%s.Dense() = %v", m, m.Dense())
		}
	}
	for _, s := range []string{"", "bogus", "TIES", "dare-ties"} {
		if _, err := ParseStackMethod(s); !errors.Is(err, ErrMethod) {
			t.Errorf("ParseStackMethod(%q): err %v, want ErrMethod", s, err)
		}
	}
}
