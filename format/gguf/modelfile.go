package gguf

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Modelfile renders an Ollama Modelfile that runs model (a GGUF model
// file) and, if adapter is not "", the LoRA adapter GGUF on it. Paths are
// written relative to dir, the folder the Modelfile goes in, as Ollama
// resolves them. deltactl's tests do not run Ollama: the file follows
// Ollama's documented FROM / ADAPTER syntax and is untested here.
func Modelfile(dir, model, adapter string) (string, error) {
	rel := func(p string) (string, error) {
		r, err := filepath.Rel(dir, p)
		if err != nil {
			return "", err
		}
		r = filepath.ToSlash(r)
		if !strings.HasPrefix(r, ".") && !strings.HasPrefix(r, "/") {
			r = "./" + r
		}
		return r, nil
	}
	var b strings.Builder
	b.WriteString("# Ollama Modelfile written by deltactl export (not tested against Ollama here).\n")
	b.WriteString("# Create and run the model with:\n#   ollama create NAME -f THIS_FILE && ollama run NAME\n")
	m, err := rel(model)
	if err != nil {
		return "", fmt.Errorf("gguf: modelfile: %w", err)
	}
	fmt.Fprintf(&b, "FROM %s\n", m)
	if adapter != "" {
		a, err := rel(adapter)
		if err != nil {
			return "", fmt.Errorf("gguf: modelfile: %w", err)
		}
		fmt.Fprintf(&b, "ADAPTER %s\n", a)
	}
	return b.String(), nil
}
