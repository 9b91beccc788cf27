// Package faultproxy is a test helper: an HTTP proxy on loopback, put
// between an S3 client and a real S3 server, that injects faults on the
// requests a rule picks: connection resets, 500 answers, stalls, a request
// body cut in the middle (a broken upload), an answer lost after the server
// applied the request, and a response body cut in the middle.
//
// It is bounded on purpose: it listens on 127.0.0.1 only, forwards only to
// the upstream it was given, injects at most MaxFaults faults (then passes
// everything through), and never stalls longer than MaxStall.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Fault is what the proxy does with one request.
type Fault int

// The faults.
const (
	// Pass forwards the request and its answer untouched.
	Pass Fault = iota
	// Reset drops the client connection with a TCP reset, forwarding nothing.
	Reset
	// Status500 answers 500 InternalError without forwarding.
	Status500
	// Stall waits Proxy.Stall (at most MaxStall), then forwards.
	Stall
	// CutBody forwards the request but stops its body after Proxy.CutAfter
	// bytes (the server sees a broken upload), then resets the client.
	CutBody
	// LoseAnswer forwards the request (the server applies it) and resets
	// the client before it sees the answer: the ambiguous failure.
	LoseAnswer
	// CutResponse forwards, then sends the client only Proxy.CutAfter bytes
	// of the answer's body before resetting the connection.
	CutResponse
)

func (f Fault) String() string {
	return [...]string{"pass", "reset", "500", "stall", "cut-body", "lose-answer", "cut-response"}[f]
}

// Rule picks the fault for a request; n counts the requests the proxy has
// seen, from 0. It is called from many goroutines.
type Rule func(r *http.Request, n int) Fault

// Bounds.
const (
	MaxStall  = 10 * time.Second
	MaxFaults = 1000
)

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's address, e.g. "http://127.0.0.1:41234".
	URL string
	// Stall is how long a Stall fault waits (default 2s, capped at MaxStall).
	Stall time.Duration
	// CutAfter is how many body bytes CutBody and CutResponse let through
	// (default 64 KiB).
	CutAfter int64

	upstream *url.URL
	srv      *http.Server
	tr       *http.Transport

	mu       sync.Mutex
	rule     Rule
	seen     int
	injected map[Fault]int
	total    int
}

// New starts a proxy in front of upstream (an http://127.0.0.1:PORT S3
// endpoint) and stops it when the test ends.
func New(t testing.TB, upstream string) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		t.Fatalf("faultproxy: upstream %q: want http://host:port", upstream)
	}
	// A Host without a port gives h == "", refused below like any non-loopback host.
	if h, _, _ := net.SplitHostPort(u.Host); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		t.Fatalf("faultproxy: upstream %q is not on loopback", upstream)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{
		URL:      "http://" + ln.Addr().String(),
		Stall:    2 * time.Second,
		CutAfter: 64 << 10,
		upstream: u,
		tr:       &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
		injected: map[Fault]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }() // returns ErrServerClosed at cleanup; the tests see any real failure as failed requests
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.srv.Shutdown(ctx) // on timeout, Close below ends what is left
		_ = p.srv.Close()       // only reports listener close errors at test end
		p.tr.CloseIdleConnections()
	})
	return p
}

// SetRule replaces the rule (nil passes everything).
func (p *Proxy) SetRule(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = r
}

// Injected returns how many times each fault was injected so far.
func (p *Proxy) Injected() map[Fault]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[Fault]int, len(p.injected))
	for k, v := range p.injected {
		m[k] = v
	}
	return m
}

func (p *Proxy) pick(r *http.Request) Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.seen
	p.seen++
	if p.rule == nil || p.total >= MaxFaults {
		return Pass
	}
	f := p.rule(r, n)
	if f != Pass {
		p.injected[f]++
		p.total++
	}
	return f
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.pick(r)
	switch f {
	case Reset:
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20)) // let the client start sending; the connection is reset anyway
		reset(w)
		return
	case Status500:
		_, _ = io.Copy(io.Discard, r.Body) // the request is answered with a 500 whatever it held
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by faultproxy</Message></Error>`) // a client gone away is no proxy failure
		return
	case Stall:
		select {
		case <-time.After(min(p.Stall, MaxStall)):
		case <-r.Context().Done():
			return
		}
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = p.upstream.Scheme
	out.URL.Host = p.upstream.Host
	// out.Host stays the client's Host header: it is part of the signature.
	if f == CutBody {
		out.Body = &cutReader{r: r.Body, left: p.CutAfter}
	}
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		if f == CutBody {
			reset(w)
			return
		}
		http.Error(w, "faultproxy: upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer func() { _ = resp.Body.Close() }() // read only, relayed or discarded
	if f == CutBody || f == LoseAnswer {
		_, _ = io.Copy(io.Discard, resp.Body) // the answer is deliberately lost
		reset(w)
		return
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if f == CutResponse {
		_, _ = io.CopyN(w, resp.Body, p.CutAfter) // the client is about to be reset; a short copy is the fault itself
		w.(http.Flusher).Flush()
		reset(w)
		return
	}
	_, _ = io.Copy(w, resp.Body) // a failed relay shows up at the client as a broken response
}

// errCut is what the upstream request body returns where it is cut.
var errCut = errors.New("faultproxy: request body cut")

var (
	_ http.Handler  = (*Proxy)(nil)
	_ io.ReadCloser = (*cutReader)(nil)
)

type cutReader struct {
	r    io.Reader
	left int64
}

func (c *cutReader) Read(b []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.r.Read(b)
	c.left -= int64(n)
	return n, err
}

func (c *cutReader) Close() error { return nil }

// reset closes the client connection with SO_LINGER 0, so the client sees
// "connection reset by peer", not a clean end.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // without it the client sees a clean close, still a failure
	}
	_ = conn.Close() // closing is the fault being injected; its error says nothing more
}
