package main

import (
	"fmt"
	"slices"
	"time"

	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
)

// historyRow is one revision in `helm history --output json`, the same fields and names.
type historyRow struct {
	Revision         int        `json:"revision"`
	Updated          *time.Time `json:"updated,omitempty"`
	Status           string     `json:"status"`
	Chart            string     `json:"chart"`
	AppVersion       string     `json:"app_version"`
	RollbackRevision int        `json:"rollback_revision,omitempty"`
	Description      string     `json:"description"`
}

// historyRows: the newest `maximum` revisions, oldest first, as the CLI lists them.
func historyRows(releases []*releasev1.Release, maximum int) []historyRow {
	releaseutil.Reverse(releases, releaseutil.SortByRevision)
	newest := releases[:min(len(releases), max(maximum, 0))]
	rows := make([]historyRow, 0, len(newest))
	for _, r := range slices.Backward(newest) {
		row := historyRow{
			Revision:         r.Version,
			Status:           r.Info.Status.String(),
			Chart:            chartName(r.Chart),
			AppVersion:       appVersion(r.Chart),
			RollbackRevision: r.Info.RollbackRevision,
			Description:      r.Info.Description,
		}
		if !r.Info.LastDeployed.IsZero() {
			updated := r.Info.LastDeployed
			row.Updated = &updated
		}
		rows = append(rows, row)
	}
	return rows
}

// The CLI's words for a release whose chart was lost.
const missingChart = "MISSING"

func chartName(c *chartv2.Chart) string {
	if c == nil || c.Metadata == nil {
		return missingChart
	}
	return fmt.Sprintf("%s-%s", c.Name(), c.Metadata.Version)
}

func appVersion(c *chartv2.Chart) string {
	if c == nil || c.Metadata == nil {
		return missingChart
	}
	return c.AppVersion()
}
