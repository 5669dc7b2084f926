// Package demo holds the demo event the embedded default loads on first
// start: the Nordic anti-trafficking best-practice seminar of 18 November
// 2021. It is data like any other event, kept as JSON.
package demo

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"github.com/rapporteur/rapporteur/server/store"
)

//go:embed nordic-2021.json
var nordic2021 []byte

// Slug is the demo event's slug.
const Slug = "nordic-anti-trafficking-2021"

// Spec returns the demo event.
func Spec() (store.EventSpec, error) {
	var spec store.EventSpec
	if err := json.Unmarshal(nordic2021, &spec); err != nil {
		return spec, fmt.Errorf("demo event: %w", err)
	}
	return spec, nil
}
