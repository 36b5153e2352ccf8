package sse

import (
	"errors"
	"net/http/httptest"
	"testing"
)

func TestModeOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		query  string
		accept string
		want   Mode
		err    bool
	}{
		{"default is JSON", "", "", JSON, false},
		{"JSON with application/json accept", "", "application/json", JSON, false},
		{"wg_sse=true", "?wg_sse=true", "", SSE, false},
		{"wg_sse=1", "?wg_sse=1", "", SSE, false},
		{"wg_sse present without value", "?wg_sse", "", SSE, false},
		{"wg_sse empty value", "?wg_sse=", "", SSE, false},
		{"wg_sse=TRUE", "?wg_sse=TRUE", "", SSE, false},
		{"wg_sse=false", "?wg_sse=false", "", JSON, false},
		{"accept event-stream", "", "text/event-stream", SSE, false},
		{"accept list with event-stream", "", "application/json, Text/Event-Stream;q=0.9", SSE, false},
		{"explicit false beats accept", "?wg_sse=false", "text/event-stream", JSON, false},
		{"once", "?wg_subscribe_once=true", "", Once, false},
		{"once present without value", "?wg_subscribe_once", "", Once, false},
		{"once=false", "?wg_subscribe_once=false", "", JSON, false},
		{"once with sse", "?wg_subscribe_once=true&wg_sse=true", "", OnceSSE, false},
		{"once with accept", "?wg_subscribe_once=1", "text/event-stream", OnceSSE, false},
		{"first value counts", "?wg_sse=true&wg_sse=false", "", SSE, false},
		{"malformed wg_sse", "?wg_sse=maybe", "", 0, true},
		{"malformed once", "?wg_subscribe_once=yes", "", 0, true},
		{"other params ignored", "?first=3&wg_live=true", "", JSON, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/operations/x"+tt.query, nil)
			if tt.accept != "" {
				r.Header.Set("Accept", tt.accept)
			}
			got, err := ModeOf(r)
			if tt.err {
				if !errors.Is(err, ErrInvalidFlag) {
					t.Fatalf("err = %v, want ErrInvalidFlag", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ModeOf = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestModeOfErrorDoesNotEchoInput(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("GET", "/x?wg_sse=%3Cscript%3E", nil)
	_, err := ModeOf(r)
	if err == nil || err.Error() != "invalid flag value: wg_sse must be true or false" {
		t.Fatalf("err = %v", err)
	}
}
