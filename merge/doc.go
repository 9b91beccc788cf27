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
// Results are deterministic: the same inputs give the same bits on any
// thread count and kernel path.
package merge
