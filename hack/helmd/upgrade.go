package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/cli/output"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/release"
	"helm.sh/helm/v4/pkg/release/common"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// upgradeFlags are the `helm upgrade` flags the operator passes (helm/actions.py).
type upgradeFlags struct {
	install, createNamespace, resetValues, disableOpenAPI bool
	dryRun, description, format, repo, version, caFile    string
	valueFiles                                            []string
	historyMax                                            int
	timeout                                               time.Duration
	labels                                                map[string]string
}

func (c *call) upgradeFlags() *upgradeFlags {
	u := &upgradeFlags{}
	f := c.flags
	f.BoolVarP(&u.install, "install", "i", false, "")
	f.BoolVar(&u.createNamespace, "create-namespace", false, "")
	f.BoolVar(&u.resetValues, "reset-values", false, "")
	f.BoolVar(&u.disableOpenAPI, "disable-openapi-validation", false, "")
	f.StringVar(&u.dryRun, "dry-run", "none", "")
	f.StringVar(&u.description, "description", "", "")
	f.StringVarP(&u.format, "output", "o", "table", "")
	f.StringVar(&u.repo, "repo", "", "")
	f.StringVar(&u.version, "version", "", "")
	f.StringVar(&u.caFile, "ca-file", "", "")
	f.StringSliceVarP(&u.valueFiles, "values", "f", []string{}, "")
	f.IntVar(&u.historyMax, "history-max", c.settingsMaxHistory(), "")
	f.DurationVar(&u.timeout, "timeout", 300*time.Second, "")
	f.StringToStringVarP(&u.labels, "labels", "l", nil, "")
	return u
}

func (c *call) settingsMaxHistory() int { return envSettings(c.req.Env).MaxHistory }

// dryRunStrategy reads --dry-run as helm 4 does for the values the operator passes.
func dryRunStrategy(value string) (action.DryRunStrategy, error) {
	switch value {
	case string(action.DryRunNone):
		return action.DryRunNone, nil
	case string(action.DryRunServer):
		return action.DryRunServer, nil
	case string(action.DryRunClient):
		return action.DryRunClient, nil
	}
	return action.DryRunNone, unservedError{fmt.Sprintf("--dry-run=%s", value)}
}

// upgrade is `helm upgrade [--install]` in the CLI's order of steps and with its texts.
func (c *call) upgrade(args []string) error {
	u := c.upgradeFlags()
	rest, err := c.parse(args, 2, false)
	if err != nil {
		return err
	}
	if u.format != "json" {
		return unservedError{"upgrade --output " + u.format}
	}
	strategy, err := dryRunStrategy(u.dryRun)
	if err != nil {
		return err
	}
	c.caFile = u.caFile
	cfg, err := c.configure()
	if err != nil {
		return err
	}
	client := action.NewUpgrade(cfg)
	client.WaitStrategy, client.WaitOptions = hookOnlyWait(client.WaitOptions)
	client.ServerSideApply = "auto"
	client.Namespace = c.releaseNamespace
	client.Install, client.ResetValues, client.DisableOpenAPIValidation = u.install, u.resetValues, u.disableOpenAPI
	client.Description, client.Labels, client.MaxHistory, client.Timeout = u.description, u.labels, u.historyMax, u.timeout
	client.RepoURL, client.Version, client.CaFile = u.repo, u.version, u.caFile
	client.DryRunStrategy = strategy
	client.SetRegistryClient(cfg.RegistryClient)
	valueOpts := &values.Options{ValueFiles: u.valueFiles}

	if client.Install {
		history := action.NewHistory(cfg)
		history.Max = 1
		versions, err := history.Run(rest[0])
		uninstalled := isUninstalled(versions)
		if errors.Is(err, driver.ErrReleaseNotFound) || uninstalled {
			return c.install(cfg, client, u.createNamespace, uninstalled, rest, valueOpts)
		} else if err != nil {
			return err
		}
	}
	loaded, vals, err := c.chartAndValues(&client.ChartPathOptions, rest[1], valueOpts)
	if err != nil {
		return err
	}
	rel, err := client.RunWithContext(c.cancellable(rest[0]), rest[0], loaded, vals)
	if err != nil {
		return fmt.Errorf("UPGRADE FAILED: %w", err)
	}
	return c.writeRelease(rel)
}

// install is the install that `upgrade --install` runs for a release that is not there.
func (c *call) install(cfg *action.Configuration, up *action.Upgrade, createNamespace, replace bool,
	args []string, valueOpts *values.Options,
) error {
	in := action.NewInstall(cfg)
	in.CreateNamespace = createNamespace
	in.ChartPathOptions = up.ChartPathOptions
	in.DryRunStrategy = up.DryRunStrategy
	in.Timeout = up.Timeout
	in.WaitStrategy = up.WaitStrategy
	in.WaitOptions = up.WaitOptions
	in.Namespace = up.Namespace
	in.DisableOpenAPIValidation = up.DisableOpenAPIValidation
	in.Description = up.Description
	in.Labels = up.Labels
	in.ServerSideApply = up.ServerSideApply != "false"
	in.Replace = replace
	in.SetRegistryClient(cfg.RegistryClient)
	name, chartRef, err := in.NameAndChart(args)
	if err != nil {
		return err
	}
	in.ReleaseName = name
	loaded, vals, err := c.chartAndValues(&in.ChartPathOptions, chartRef, valueOpts)
	if err != nil {
		return err
	}
	accessor, err := chart.NewAccessor(loaded)
	if err != nil {
		return err
	}
	switch kind := accessor.MetadataAsMap()["Type"]; kind {
	case "", "application":
	default:
		return fmt.Errorf("%s charts are not installable", kind)
	}
	released, err := in.RunWithContext(c.cancellable(args[0]), loaded, vals)
	rel, convErr := v1Release(released)
	if convErr != nil {
		return convErr
	}
	if err != nil {
		return err
	}
	return c.writeRelease(rel)
}

// chartAndValues locates and loads the chart and merges the values, in the CLI's order (so
// a missing chart is reported before a bad values file).
func (c *call) chartAndValues(opts *action.ChartPathOptions, ref string, valueOpts *values.Options,
) (chart.Charter, map[string]any, error) {
	chartPath, err := opts.LocateChart(ref, c.settings)
	if err != nil {
		return nil, nil, err
	}
	vals, err := valueOpts.MergeValues(getter.All(c.settings))
	if err != nil {
		return nil, nil, err
	}
	loaded, err := loadChart(chartPath)
	if err != nil {
		return nil, nil, err
	}
	return loaded, vals, nil
}

// loadChart loads the chart and checks that its dependencies are present, as the CLI does
// (the operator never asks for --dependency-update).
func loadChart(path string) (chart.Charter, error) {
	loaded, err := loader.Load(path)
	if err != nil {
		return nil, err
	}
	accessor, err := chart.NewAccessor(loaded)
	if err != nil {
		return nil, err
	}
	if req := accessor.MetaDependencies(); len(req) > 0 {
		if err := action.CheckDependencies(loaded, req); err != nil {
			return nil, fmt.Errorf("an error occurred while checking for chart dependencies. You may need to run 'helm dependency build' to fetch missing dependencies: %w", err)
		}
	}
	return loaded, nil
}

// cancellable is the request's context, with the line the CLI prints on SIGTERM when it
// is cancelled (helm then marks the release failed).
func (c *call) cancellable(name string) context.Context {
	c.stops = append(c.stops, context.AfterFunc(c.ctx, func() {
		fmt.Fprintf(&c.stdout, "Release %s has been cancelled.\n", name)
	}))
	return c.ctx
}

func (c *call) writeRelease(r release.Releaser) error {
	rel, err := v1Release(r)
	if err != nil {
		return err
	}
	if rel == nil {
		return output.EncodeJSON(&c.stdout, struct{}{})
	}
	return output.EncodeJSON(&c.stdout, rel)
}

func isUninstalled(versions []release.Releaser) bool {
	releases, err := v1Releases(versions)
	if err != nil {
		return false
	}
	return len(releases) > 0 && releases[len(releases)-1].Info.Status == common.StatusUninstalled
}
