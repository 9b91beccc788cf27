// Package merge does the delta algebra of deltactl on whole models and on
// deltas: Merge folds LoRA, IA3, DoRA and full deltas into a base model's
// weights (optionally writing a correction file that makes Unmerge exact),
// Unmerge takes them out again, Stack combines several deltas into one LoRA
// (cat, linear, svd, TIES, DARE, magnitude pruning), Reduce truncates a
// LoRA's ranks optimally, and Extract turns the difference of two models
// into a LoRA by randomized SVD.
//
// Dense float32 products run on the kernels package; the small float64
// factorisations (QR, SVD, eigenvalues of r×r cores) on gonum's LAPACK.
// Results do not depend on the thread count. kernels.Sgemm is bit-identical
// between its AVX2 and AVX-512 paths (the pure-Go path rounds
// differently); Merge's per-element update is bit-identical on every path,
// which is what makes Unmerge with a correction file exact.
package merge
