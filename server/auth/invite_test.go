package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"image/png"
	"io"
	"strings"
	"testing"
)

func TestInviteTokens(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		tok, hash := NewInviteToken()
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw) < 16 {
			t.Fatalf("token %q: %d bytes, %v", tok, len(raw), err)
		}
		sum := sha256.Sum256([]byte(tok))
		if hash != hex.EncodeToString(sum[:]) || HashToken(tok) != hash {
			t.Fatal("hash is not hex SHA-256 of the token")
		}
		if seen[tok] {
			t.Fatal("token repeated")
		}
		seen[tok] = true
	}
}

func TestQRCodes(t *testing.T) {
	tok, _ := NewInviteToken()
	link := "https://seminar.example.org/i/" + tok
	b, err := QRCodePNG(link, 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != 256 || img.Bounds().Dy() != 256 {
		t.Errorf("PNG %v", img.Bounds())
	}
	if _, err := QRCodePNG(link, 0); err == nil {
		t.Error("size 0 accepted")
	}

	svg, err := QRCodeSVG(link, 200)
	if err != nil {
		t.Fatal(err)
	}
	s := string(svg)
	if !strings.HasPrefix(s, `<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 `) ||
		strings.Contains(strings.ToLower(s), "script") || strings.Contains(s, tok) {
		t.Errorf("svg: %.200s", s)
	}
	// Well-formed XML, one path of modules.
	d := xml.NewDecoder(bytes.NewReader(svg))
	paths := 0
	for {
		tk, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		if se, ok := tk.(xml.StartElement); ok && se.Name.Local == "path" {
			paths++
		}
	}
	if paths != 1 {
		t.Errorf("%d paths", paths)
	}
	if scalable, _ := QRCodeSVG(link, 0); !bytes.HasPrefix(scalable, []byte(`<svg xmlns="http://www.w3.org/2000/svg" viewBox=`)) {
		t.Error("size 0 should leave width/height out")
	}
}
