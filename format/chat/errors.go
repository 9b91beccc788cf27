package chat

import "errors"

// ErrTemplate is wrapped by every error compiling or rendering a chat
// template: a syntax error, a feature the engine does not implement, or the
// template's own raise_exception (then also a *RaisedError).
var ErrTemplate = errors.New("chat template cannot be rendered")

// RaisedError is the template calling raise_exception(Message), which is
// how chat templates refuse a conversation they do not accept (a role they
// do not know, roles not alternating).
type RaisedError struct{ Message string }

func (e *RaisedError) Error() string { return "chat template refused the conversation: " + e.Message }

// Is makes a RaisedError match ErrTemplate.
func (e *RaisedError) Is(target error) bool { return target == ErrTemplate }
