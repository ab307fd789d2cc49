package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// A body must keep arriving once the server reads it.
//
// A big request holds its share of the in-flight budget (inflight.go) from
// before its body is read until it is answered; a small body holds what it
// has received of the arriving budget until its request is admitted.
// Bounded only by the server's read timeout, a client that declared a
// large body and trickled it held the large lane for 30 s, and every big
// roster from anyone else was shed meanwhile. So, as Apache's
// mod_reqtimeout does, the body gets a start (bodyGrace) and then must
// arrive at Config.MinBodyRate on average: its read deadline is
//
//	first read + bodyGrace + bytes received so far / MinBodyRate
//
// moved forward as bytes arrive, and never past bodyLimit (the server's
// read timeout) from when the body was first asked for, after the
// request's head was read: a deadline without that cap let a body still
// arriving run into the write timeout, which counts from the end of the
// head, and a decision was recorded that could no longer be answered. (So
// a request whose head took long, up to the 10 s ReadHeaderTimeout, may
// take that much longer in all than net/http's ReadTimeout alone allowed.) A client slower than that is answered 408
// body_timeout and what it held released. A body that is already in the
// server's buffer (almost every admission) costs two deadline updates; the
// deadline is lifted once the body is read, so that it does not cut off a
// decision that takes longer than the body took to arrive.
//
// Time spent waiting for the large lane after the body began (a gzip body
// that outgrew the small one, Server.inflateSmall) is not counted against the
// rate: lift takes the deadline off for the wait, shift moves the start
// by it and sets the deadline again.
//
// The trade-off: a client on a link slower than MinBodyRate cannot send a
// big body at all; the operator lowers --min-body-rate for it, and so lets
// a trickler hold the budget longer (never past bodyLimit): the large lane
// with a declared length, the arriving budget with the bytes it sent.

// bodyGrace is how long a body may take before the rate counts: a round
// trip and TCP's slow start on a distant link.
const bodyGrace = 2 * time.Second

// bodyLimit is the server's read timeout: the longest a request's body may
// take, whatever its rate.
const bodyLimit = 30 * time.Second

// deadlineStep is the least a deadline is moved forward: a big body is read
// in tens of reads, and each move costs a timer update.
const deadlineStep = 100 * time.Millisecond

// errBodyTooSlow: the body did not arrive at the minimum rate.
var errBodyTooSlow = errors.New("the body arrived too slowly")

// pacedBody reads a request body under a read deadline that follows the
// bytes received.
type pacedBody struct {
	body     io.ReadCloser
	w        http.ResponseWriter
	start    time.Time
	grace    time.Duration
	rate     float64 // bytes per second
	received int64
	limit    time.Time // the latest deadline (bodyLimit)
	deadline time.Time
	// unsupported: the connection takes no read deadline (then only the
	// server's read timeout bounds the body).
	unsupported bool
}

// newPacedBody paces body from now on, up to limit (the body's first ask,
// before the request waited for the budget, plus bodyLimit).
func newPacedBody(w http.ResponseWriter, body io.ReadCloser, grace time.Duration, rate int64, limit time.Time) *pacedBody {
	p := &pacedBody{body: body, w: w, start: time.Now(), grace: grace, rate: float64(rate), limit: limit}
	p.setDeadline(p.due())
	return p
}

// due is the deadline for what has been received so far.
func (p *pacedBody) due() time.Time {
	// In float64 seconds: a byte count times time.Second overflows an
	// int64 past 9 GB.
	d := p.start.Add(p.grace + time.Duration(min(float64(p.received)/p.rate, p.limit.Sub(p.start).Seconds())*float64(time.Second)))
	if d.After(p.limit) {
		return p.limit
	}
	return d
}

// shift moves the start by wait, time the request spent waiting for room
// rather than reading (never past the limit).
func (p *pacedBody) shift(wait time.Duration) {
	p.start = p.start.Add(wait)
	p.setDeadline(p.due())
}

func (p *pacedBody) Read(b []byte) (int, error) {
	n, err := p.body.Read(b)
	p.received += int64(n)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = errBodyTooSlow
		}
		return n, err
	}
	if d := p.due(); d.Sub(p.deadline) >= deadlineStep {
		p.setDeadline(d)
	}
	return n, nil
}

func (p *pacedBody) Close() error { return p.body.Close() }

// lift takes the deadline off: once the body has been read, and while the
// request waits for room with nothing reading it.
func (p *pacedBody) lift() { p.setDeadline(time.Time{}) }

func (p *pacedBody) setDeadline(d time.Time) {
	if p.unsupported {
		return
	}
	// A controller for each call: kept, it is one more allocation per
	// request.
	if err := http.NewResponseController(p.w).SetReadDeadline(d); err != nil {
		p.unsupported = true
		return
	}
	p.deadline = d
}
