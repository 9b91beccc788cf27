package main

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"syscall"

	"github.com/deltactl/deltactl/registry"
	"github.com/deltactl/deltactl/registry/store"
	"github.com/deltactl/deltactl/train"
)

// Exit codes, the same in every command (deltactl help exit-codes). A
// pipeline branches on them, never on the wording of a message.
const (
	exitOK          = 0
	exitFailure     = 1 // anything not listed below
	exitUsage       = 2 // the command line is wrong
	exitCheckFailed = 3 // an eval gate or a verify check failed
	exitNotFound    = 4 // a ref, name, file or bucket does not exist
	exitConflict    = 5 // an --expect mismatch, a concurrent change, a lock held
	exitUnreachable = 6 // the registry cannot be reached, or access is denied
)

// errCheckFailed marks a command that ran to the end and found what it
// checks wrong (a verify problem); the gate of eval and train fails with
// train.ErrGateFailed.
var errCheckFailed = errors.New("check failed")

// exitCode is the one mapping from the libraries' sentinel errors to exit
// codes, with the machine-readable name --json prints. The first match wins,
// so a usage error wrapping a missing file is still a usage error.
func exitCode(err error) (code int, name string) {
	var ue usageError
	var oe *net.OpError
	var de *net.DNSError
	switch {
	case err == nil:
		return exitOK, "ok"
	case errors.As(err, &ue):
		return exitUsage, "usage"
	case errors.Is(err, train.ErrGateFailed), errors.Is(err, errCheckFailed):
		return exitCheckFailed, "check_failed"
	case errors.Is(err, store.ErrConflict), errors.Is(err, registry.ErrLocked), errors.Is(err, registry.ErrLockLost):
		// registry.ErrRefMoved wraps store.ErrConflict.
		return exitConflict, "conflict"
	case errors.Is(err, store.ErrDenied):
		return exitUnreachable, "access_denied"
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return exitNotFound, "not_found"
	case errors.Is(err, store.ErrUnreachable), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH), errors.As(err, &oe), errors.As(err, &de):
		// What is left of a transport failure after the store's retries:
		// refused, unroutable, timed out, no such host.
		return exitUnreachable, "unreachable"
	}
	return exitFailure, "failure"
}

// jsonError is what a failing command prints on stderr under --json.
type jsonError struct {
	Error jsonErrorBody `json:"error"`
}

type jsonErrorBody struct {
	Code     string `json:"code"`
	ExitCode int    `json:"exit_code"`
	Message  string `json:"message"`
}

// writeJSONError prints err as one line of JSON on w.
func writeJSONError(w io.Writer, code int, name string, err error) {
	b, merr := json.Marshal(jsonError{jsonErrorBody{Code: name, ExitCode: code, Message: err.Error()}})
	if merr != nil { // a string and an int always marshal; keep the error visible regardless
		b = []byte(`{"error":{"code":"failure","exit_code":1,"message":"unprintable error"}}`)
	}
	_, _ = w.Write(append(b, '\n')) // stderr: nowhere left to report a failed write
}

const exitCodesHelp = `deltactl exits with one of these codes, the same in every command, so that a
script or CI pipeline can branch on what happened without reading messages:

  0  ok
  1  failure: anything not listed below (bad data, a disk error, a bug)
  2  usage: the command line is wrong (unknown flag, missing argument,
     malformed ref, a flag value refused before any work)
  3  check failed: an eval or train gate (--max-loss, --min-accuracy,
     --min-improvement) or verify found a problem; the report is still
     printed on stdout
  4  not found: a ref, name, file, folder or bucket does not exist
  5  conflict: a tag --expect mismatch, a ref moved concurrently, a lock is
     held by another process
  6  unreachable: the registry cannot be reached or access is denied

With --json a failure also prints one line of JSON on stderr:

  {"error": {"code": "not_found", "exit_code": 4, "message": "..."}}

where code is one of failure, usage, check_failed, not_found, conflict,
unreachable or access_denied (both exit 6).`
