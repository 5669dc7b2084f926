package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCheckCSRF(t *testing.T) {
	const base = "https://seminar.example.org"
	s := Session{CSRF: "the-right-token"}
	type hdr = map[string]string
	for _, tc := range []struct {
		name   string
		method string
		hdr    hdr
		form   url.Values
		query  string
		sess   Session
		ok     bool
	}{
		{"GET needs nothing", "GET", nil, nil, "", s, true},
		{"HEAD needs nothing", "HEAD", hdr{"Origin": "https://evil.example"}, nil, "", s, true},
		{"POST without token", "POST", nil, nil, "", s, false},
		{"POST wrong header token", "POST", hdr{CSRFHeader: "nope"}, nil, "", s, false},
		{"POST right header token", "POST", hdr{CSRFHeader: "the-right-token"}, nil, "", s, true},
		{"PUT right header token", "PUT", hdr{CSRFHeader: "the-right-token"}, nil, "", s, true},
		{"PATCH without token", "PATCH", nil, nil, "", s, false},
		{"DELETE wrong token", "DELETE", hdr{CSRFHeader: "the-right-tokeN"}, nil, "", s, false},
		{"DELETE right token", "DELETE", hdr{CSRFHeader: "the-right-token"}, nil, "", s, true},
		{"unknown method without token", "PROPPATCH", nil, nil, "", s, false},
		{"POST right form token", "POST", nil, url.Values{CSRFField: {"the-right-token"}}, "", s, true},
		{"POST wrong form token", "POST", nil, url.Values{CSRFField: {"x"}}, "", s, false},
		{"token only in URL", "POST", nil, nil, CSRFField + "=the-right-token", s, false},
		{"session without CSRF token", "POST", hdr{CSRFHeader: ""}, url.Values{CSRFField: {""}}, "", Session{}, false},
		{"same Origin", "POST", hdr{CSRFHeader: "the-right-token", "Origin": base}, nil, "", s, true},
		{"same Origin default port", "POST", hdr{CSRFHeader: "the-right-token", "Origin": "https://Seminar.Example.org:443"}, nil, "", s, true},
		{"foreign Origin", "POST", hdr{CSRFHeader: "the-right-token", "Origin": "https://evil.example"}, nil, "", s, false},
		{"http Origin for https site", "POST", hdr{CSRFHeader: "the-right-token", "Origin": "http://seminar.example.org"}, nil, "", s, false},
		{"other port", "POST", hdr{CSRFHeader: "the-right-token", "Origin": "https://seminar.example.org:8443"}, nil, "", s, false},
		{"null Origin", "POST", hdr{CSRFHeader: "the-right-token", "Origin": "null"}, nil, "", s, false},
		{"cross-site fetch", "POST", hdr{CSRFHeader: "the-right-token", "Sec-Fetch-Site": "cross-site"}, nil, "", s, false},
		{"same-site fetch", "POST", hdr{CSRFHeader: "the-right-token", "Sec-Fetch-Site": "same-site"}, nil, "", s, false},
		{"same-origin fetch", "POST", hdr{CSRFHeader: "the-right-token", "Sec-Fetch-Site": "same-origin", "Origin": base}, nil, "", s, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "/api/findings"
			if tc.query != "" {
				target += "?" + tc.query
			}
			var r *http.Request
			if tc.form != nil {
				r = httptest.NewRequest(tc.method, target, strings.NewReader(tc.form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			} else {
				r = httptest.NewRequest(tc.method, target, nil)
			}
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			err := CheckCSRF(r, tc.sess, base)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok {
				var ae *AuthError
				if !errors.As(err, &ae) || ae.Code != CodeCSRF || ae.HTTPStatus() != http.StatusForbidden {
					t.Fatalf("err %v, want csrf", err)
				}
			}
		})
	}
}

func TestCheckCSRFWithoutBaseOriginUsesHost(t *testing.T) {
	s := Session{CSRF: "tok"}
	r := httptest.NewRequest("POST", "http://tablet.local:8080/x", nil)
	r.Header.Set(CSRFHeader, "tok")
	r.Header.Set("Origin", "http://tablet.local:8080")
	if err := CheckCSRF(r, s, ""); err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Origin", "http://evil.local:8080")
	if CheckCSRF(r, s, "") == nil {
		t.Fatal("foreign origin accepted")
	}
}

func TestProtectMiddleware(t *testing.T) {
	m, _, _ := newTestSessions(false)
	sess, c := start(t, m, reqWith(nil), 5)
	h := m.Protect("http://example.com")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := SessionFromContext(r.Context())
		if ok {
			w.Header().Set("X-Person", "5")
			_ = s
		}
		w.WriteHeader(204)
	}))
	do := func(method string, cookie *http.Cookie, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://example.com/x", nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		if token != "" {
			r.Header.Set(CSRFHeader, token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := do("POST", c, ""); rec.Code != 403 {
		t.Errorf("POST without token: %d", rec.Code)
	}
	if rec := do("POST", c, sess.CSRF); rec.Code != 204 || rec.Header().Get("X-Person") != "5" {
		t.Errorf("POST with token: %d", rec.Code)
	}
	if rec := do("GET", c, ""); rec.Code != 204 || rec.Header().Get("X-Person") != "5" {
		t.Errorf("GET: %d", rec.Code)
	}
	if rec := do("POST", nil, ""); rec.Code != 204 || rec.Header().Get("X-Person") != "" {
		t.Errorf("no session: %d", rec.Code)
	}
}
