package merge

import "fmt"

// StackMethod names how Stack combines deltas (see StackOptions.Method).
type StackMethod string

// The stack methods.
const (
	StackCat            StackMethod = "cat"
	StackLinear         StackMethod = "linear"
	StackSVD            StackMethod = "svd"
	StackTIES           StackMethod = "ties"
	StackDARELinear     StackMethod = "dare_linear"
	StackDARETIES       StackMethod = "dare_ties"
	StackMagnitudePrune StackMethod = "magnitude_prune"
)

// StackMethods returns every stack method, in the order help texts list them.
func StackMethods() []StackMethod {
	return []StackMethod{StackCat, StackLinear, StackSVD, StackTIES, StackDARELinear, StackDARETIES, StackMagnitudePrune}
}

// ParseStackMethod returns the method named s, or an error wrapping
// ErrMethod that lists the known ones.
func ParseStackMethod(s string) (StackMethod, error) {
	m := StackMethod(s)
	if !m.Valid() {
		return "", fmt.Errorf("%w: unknown method %q (want one of %v)", ErrMethod, s, StackMethods())
	}
	return m, nil
}

// Valid reports whether m is one of StackMethods.
func (m StackMethod) Valid() bool {
	switch m {
	case StackCat, StackLinear, StackSVD, StackTIES, StackDARELinear, StackDARETIES, StackMagnitudePrune:
		return true
	}
	return false
}

// Dense reports whether m works on the dense per-module deltas (prune and
// combine in delta space, then back to low rank); these need a density.
func (m StackMethod) Dense() bool {
	switch m {
	case StackTIES, StackDARELinear, StackDARETIES, StackMagnitudePrune:
		return true
	}
	return false
}

func (m StackMethod) String() string { return string(m) }

var _ fmt.Stringer = StackMethod("")
