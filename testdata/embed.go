// Package testdata holds the fixtures deltactl's tests and demo use. This file
// embeds the bundled tiny base model, so that the deltactl binary carries it
// and `deltactl demo` works from anywhere with no setup.
package testdata

import (
	"embed"
	"io/fs"
)

//go:embed tinyllama/config.json tinyllama/model.safetensors tinyllama/heldout.txt tinyllama/LICENSE
var tinyLlama embed.FS

// TinyLlama is the bundled base model folder (config.json, model.safetensors)
// with its held-out text (heldout.txt) and license notice (LICENSE).
func TinyLlama() fs.FS {
	sub, err := fs.Sub(tinyLlama, "tinyllama")
	if err != nil {
		panic(err) // unreachable: the folder is embedded at build time
	}
	return sub
}
