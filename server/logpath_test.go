package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFailedSignInLinksAreNotLogged: a request that fails is logged with
// its path; a sign-in link's path is its token, which would sign anyone
// who reads the log in, so it is left out.
func TestFailedSignInLinksAreNotLogged(t *testing.T) {
	var log bytes.Buffer
	a := &app{appDeps: appDeps{logger: slog.New(slog.NewTextHandler(&log, nil))}}
	const token = "KdhVoDRIaCkWSFn2TxFtLZB-y3kURwPX"
	for _, path := range []string{"/signin/" + token, "/api/events/x"} {
		log.Reset()
		a.fail(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil), errors.New("the database went away"))
		if !strings.Contains(log.String(), "request failed") {
			t.Fatalf("%s: the failure was not logged: %q", path, log.String())
		}
		if strings.Contains(log.String(), token) {
			t.Errorf("the log keeps a sign-in link's token: %q", log.String())
		}
		if !strings.HasPrefix(path, "/signin/") && !strings.Contains(log.String(), path) {
			t.Errorf("the log lacks the path %s: %q", path, log.String())
		}
	}
}
