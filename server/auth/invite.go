package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// inviteTokenBytes is the invite token's entropy: 192 bits.
const inviteTokenBytes = 24

// NewInviteToken returns a fresh invite token for a QR link (192 random
// bits, URL-safe base64 without padding) and its hash for storage. Only
// the hash is stored; the token exists only in the printed link.
func NewInviteToken() (token string, hash string) {
	token = randomToken(inviteTokenBytes)
	return token, HashToken(token)
}

// WellFormedToken tells whether s could be a token of this package: URL-safe
// base64 of at most 128 characters. Anything else is no token, and must
// not be echoed into a page (a path with "/" or "..").
func WellFormedToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// HashToken is the storage form of a secret token (invite or session):
// hex SHA-256. The tokens carry 128+ random bits, so a plain fast hash is
// the right tool; a database leak does not reveal usable tokens.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// randomToken returns n random bytes as unpadded URL-safe base64.
// crypto/rand.Read never fails on supported platforms (Go 1.24+).
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// QRCodePNG renders url as a QR code PNG of size×size pixels, with error
// correction level M (15%) and the standard quiet zone.
func QRCodePNG(url string, size int) ([]byte, error) {
	if size <= 0 {
		return nil, newErr(CodeConfig, "QR code size must be positive", nil)
	}
	q, err := qrcode.New(url, qrcode.Medium)
	if err != nil {
		return nil, newErr(CodeInternal, "cannot encode the link as a QR code", err)
	}
	png, err := q.PNG(size)
	if err != nil {
		return nil, newErr(CodeInternal, "cannot render the QR code", err)
	}
	return png, nil
}

// QRCodeSVG renders url as a standalone SVG QR code (level M, quiet zone
// included) for printing invite cards. size is the width and height in CSS
// pixels; size <= 0 leaves them out so the SVG scales to its container. The
// SVG holds only shapes (no script, no text), so it may be inlined in a
// page under the package's CSP.
func QRCodeSVG(url string, size int) ([]byte, error) {
	q, err := qrcode.New(url, qrcode.Medium)
	if err != nil {
		return nil, newErr(CodeInternal, "cannot encode the link as a QR code", err)
	}
	bm := q.Bitmap()
	n := len(bm)
	var b bytes.Buffer
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg"`)
	if size > 0 {
		fmt.Fprintf(&b, ` width="%d" height="%d"`, size, size)
	}
	fmt.Fprintf(&b, ` viewBox="0 0 %d %d" shape-rendering="crispEdges" role="img" aria-label="QR code">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bm {
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", start, y, x-start, x-start)
		}
	}
	b.WriteString(`"/></svg>`)
	return b.Bytes(), nil
}
