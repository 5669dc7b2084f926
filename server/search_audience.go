package main

import (
	"fmt"
	"slices"

	"github.com/rapporteur/rapporteur/server/auth"
	"github.com/rapporteur/rapporteur/server/domain"
)

// Visibility in search is a matter of tokens: the indexer gives each
// finding the tokens of who may read it (findingAudience), a viewer holds
// the tokens their roles grant (searchAudience), and a finding is visible
// when the two share one. Both follow the permission table of server/auth:
//
//	released             "public"                    ActFindingReadRelease
//	shared               "event:E:shared"            ActFindingReadShared
//	draft in workshop W  "event:E:workshop:W"        ActReadDrafts in W (own group)
//	                     "event:E:drafts"            ActReadDrafts event-wide
//
// A finding's tokens are only the narrowest ones: a viewer who may read
// drafts may read shared and released findings too, and holds those tokens.

// audiencePublic is the token of released findings.
const audiencePublic = "public"

func audienceShared(eventID int64) string { return fmt.Sprintf("event:%d:shared", eventID) }
func audienceDrafts(eventID int64) string { return fmt.Sprintf("event:%d:drafts", eventID) }
func audienceWorkshopDrafts(eventID, workshopID int64) string {
	return fmt.Sprintf("event:%d:workshop:%d", eventID, workshopID)
}

// findingAudience is who may find f: its visibility tokens.
func findingAudience(f domain.Finding) []string {
	switch f.ReleaseState {
	case domain.Released:
		return []string{audiencePublic}
	case domain.Shared:
		return []string{audienceShared(f.EventID)}
	}
	out := []string{audienceDrafts(f.EventID)}
	if f.WorkshopID != nil {
		out = append(out, audienceWorkshopDrafts(f.EventID, *f.WorkshopID))
	}
	return out
}

// searchAudience is what v may find in event eventID: their visibility
// tokens, from the permission table. v is nil for the public.
func searchAudience(v *viewer, eventID int64) []string {
	p := v.principal(eventID)
	var out []string
	if auth.Allowed(p, auth.ActFindingReadRelease, 0) {
		out = append(out, audiencePublic)
	}
	if auth.Allowed(p, auth.ActFindingReadShared, 0) {
		out = append(out, audienceShared(eventID))
	}
	// Workshop 0 matches only event-wide grants.
	if auth.Allowed(p, auth.ActReadDrafts, 0) {
		out = append(out, audienceDrafts(eventID))
	}
	for _, m := range p.Roles {
		if m.WorkshopID != 0 && auth.Allowed(p, auth.ActReadDrafts, m.WorkshopID) {
			if t := audienceWorkshopDrafts(eventID, m.WorkshopID); !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// searchAudienceAll is what v may find across every event they belong to,
// plus what is released everywhere.
func searchAudienceAll(v *viewer) []string {
	out := []string{audiencePublic}
	if v == nil {
		return out
	}
	for _, m := range v.Memberships {
		for _, t := range searchAudience(v, m.EventID) {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// mayRead reports whether a viewer holding tokens may read a finding with
// the audience of findingAudience.
func mayRead(tokens []string, f domain.Finding) bool {
	for _, t := range findingAudience(f) {
		if slices.Contains(tokens, t) {
			return true
		}
	}
	return false
}
