package probes

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lifecycled/lifecycled/internal/httpclient"
)

// The gRPC health check speaks grpc.health.v1.Health/Check over cleartext
// HTTP/2 with the standard library alone: importing google.golang.org/grpc
// would add megabytes to a binary whose size budget is 10 MB, for one unary
// call whose wire format fits on a page.

// healthCheckPath is the HTTP/2 :path of grpc.health.v1.Health/Check.
const healthCheckPath = "/grpc.health.v1.Health/Check"

// maxGRPCResponse bounds what is read of the response: a
// HealthCheckResponse is a few bytes, anything much larger is not one.
const maxGRPCResponse = 64 << 10

// checkGRPC is up when the standard gRPC health service at Host:Port answers
// SERVING for Service, as the kubelet's grpc probe.
func checkGRPC(ctx context.Context, t Target, opts Options) error {
	tr := httpclient.NewGRPC(opts.Control)
	defer tr.CloseIdleConnections()

	u := url.URL{Scheme: "http", Host: net.JoinHostPort(t.Host, t.Port), Path: healthCheckPath}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(healthCheckRequest(t.Service)))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	if opts.UserAgent != "" {
		req.Header.Set("User-Agent", opts.UserAgent)
	}
	// Tell the server our deadline, as gRPC clients do, so it gives up too.
	if deadline, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", grpcTimeout(time.Until(deadline)))
	}

	resp, err := tr.RoundTrip(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not a gRPC server: HTTP status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		return fmt.Errorf("not a gRPC server: content-type %q", ct)
	}
	// Read to the end: the trailers, which carry the call's status, arrive
	// only after the body.
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxGRPCResponse+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(body) > maxGRPCResponse {
		return fmt.Errorf("response larger than %d bytes", maxGRPCResponse)
	}
	if err := grpcStatus(resp); err != nil {
		return err
	}
	status, err := parseHealthCheckResponse(body)
	if err != nil {
		return err
	}
	if status != 1 {
		return fmt.Errorf("health status %s", servingStatusName(status))
	}
	return nil
}

// healthCheckRequest returns the gRPC message framing
// HealthCheckRequest{service = 1}: a compressed flag of 0, a 4-byte
// big-endian length, then the protobuf encoding, which for one string field
// is tag 0x0A, the length as a uvarint and the bytes (nothing at all for the
// empty string, proto3's default).
func healthCheckRequest(service string) []byte {
	var msg []byte
	if service != "" {
		msg = append(msg, 0x0A)
		msg = binary.AppendUvarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	frame := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	return append(frame, msg...)
}

// grpcStatus returns nil when the call's grpc-status is 0 (OK), otherwise the
// status named. It is a trailer, or a header in a trailers-only response,
// which is how servers answer errors such as an unknown service.
func grpcStatus(resp *http.Response) error {
	value, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if value == "" {
		value, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if value == "" {
		return errors.New("not a gRPC server: no grpc-status in the response")
	}
	code, err := strconv.ParseUint(value, 10, 32)
	if err != nil {
		return fmt.Errorf("bad grpc-status %q", value)
	}
	if code == 0 {
		return nil
	}
	name := grpcCodeName(code)
	if msg != "" {
		// grpc-message is percent-encoded (gRPC over HTTP/2, "Status-Message").
		if decoded, err := url.PathUnescape(msg); err == nil {
			msg = decoded
		}
		return fmt.Errorf("grpc status %s: %s", name, msg)
	}
	return fmt.Errorf("grpc status %s", name)
}

// parseHealthCheckResponse reads the ServingStatus out of one framed
// HealthCheckResponse{status = 1}. Unknown fields are skipped, as protobuf
// requires, so a newer server with more fields still parses.
func parseHealthCheckResponse(body []byte) (uint64, error) {
	if len(body) < 5 {
		return 0, errors.New("bad health response: no message")
	}
	if body[0] != 0 {
		return 0, errors.New("bad health response: compressed message, none was asked for")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	msg := body[5:]
	if uint64(n) > uint64(len(msg)) {
		return 0, fmt.Errorf("bad health response: message of %d bytes cut at %d", n, len(msg))
	}
	msg = msg[:n]
	var status uint64 // absent means 0, UNKNOWN, proto3's default
	for len(msg) > 0 {
		tag, k := binary.Uvarint(msg)
		if k <= 0 {
			return 0, errors.New("bad health response: bad field tag")
		}
		msg = msg[k:]
		field, wireType := tag>>3, tag&7
		switch wireType {
		case 0: // varint
			v, k := binary.Uvarint(msg)
			if k <= 0 {
				return 0, errors.New("bad health response: bad varint")
			}
			msg = msg[k:]
			if field == 1 {
				status = v
			}
		case 1: // fixed64
			if len(msg) < 8 {
				return 0, errors.New("bad health response: truncated field")
			}
			msg = msg[8:]
		case 2: // length-delimited
			l, k := binary.Uvarint(msg)
			if k <= 0 || l > uint64(len(msg)-k) {
				return 0, errors.New("bad health response: truncated field")
			}
			msg = msg[k+int(l):]
		case 5: // fixed32
			if len(msg) < 4 {
				return 0, errors.New("bad health response: truncated field")
			}
			msg = msg[4:]
		default:
			return 0, fmt.Errorf("bad health response: wire type %d", wireType)
		}
	}
	return status, nil
}

// servingStatusName names a grpc.health.v1 ServingStatus value.
func servingStatusName(status uint64) string {
	names := [...]string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}
	if status < uint64(len(names)) {
		return names[status]
	}
	return "status " + strconv.FormatUint(status, 10)
}

// grpcCodeName names a gRPC status code, so errors say NOT_FOUND, not 5.
func grpcCodeName(code uint64) string {
	names := [...]string{
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	}
	if code < uint64(len(names)) {
		return names[code]
	}
	return "code " + strconv.FormatUint(code, 10)
}

// grpcTimeout formats d as a grpc-timeout header value: at most 8 digits and
// a unit. Milliseconds, rounded up so the server never gives up first.
func grpcTimeout(d time.Duration) string {
	ms := (d + time.Millisecond - 1) / time.Millisecond
	switch {
	case ms < 1:
		ms = 1
	case ms > 99999999:
		return strconv.FormatInt(int64(min(d/time.Second, 99999999)), 10) + "S"
	}
	return strconv.FormatInt(int64(ms), 10) + "m"
}
