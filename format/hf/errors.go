package hf

import "errors"

// Sentinel errors callers can branch on with errors.Is.
var (
	// ErrNoWeights: the folder holds neither model.safetensors nor
	// model.safetensors.index.json.
	ErrNoWeights = errors.New("no model.safetensors or model.safetensors.index.json")
	// ErrIndex: model.safetensors.index.json is malformed or disagrees with
	// the shards (a listed tensor missing, a tensor in two shards, a shard
	// tensor the index does not list, a shard path outside the folder).
	ErrIndex = errors.New("inconsistent shard index")
	// ErrConfig: config.json is not a JSON object.
	ErrConfig = errors.New("invalid config.json")
	// ErrExists: the output folder exists and is not empty (see WithForce).
	ErrExists = errors.New("output folder exists and is not empty")
	// ErrMismatch: the Writer was given tensors or files that do not match
	// its plan (order, names, missing tensors, reserved file names).
	ErrMismatch = errors.New("does not match the writer's plan")
	// ErrSize: a size string ParseSize cannot read.
	ErrSize = errors.New("invalid size")
)
