package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/cli"
	"helm.sh/helm/v4/pkg/cli/output"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/registry"
	"helm.sh/helm/v4/pkg/release"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

// unservedError: arguments helmd does not take; the caller runs the helm CLI instead.
type unservedError struct{ what string }

func (e unservedError) Error() string { return "helmd does not serve " + e.what }

// call is one request being served: its flags, output buffers and helm configuration.
type call struct {
	ctx     context.Context
	req     request
	clients *clientCache
	// Helm's goroutines (hooks, waits, a cancel) write here too.
	stdout   lockedBuffer
	stderr   lockedBuffer
	stops    []func() bool // a cancel after the answer is sent prints nothing
	settings *cli.EnvSettings
	flags    *pflag.FlagSet
	// The CLI's global flags that the operator passes.
	kubeconfig, kubeContext, asUser, namespace string
	releaseNamespace                           string // the namespace the request acts in
	caFile                                     string // --ca-file: the chart registry's CA bundle
}

// run serves one request: the exit code, stdout and stderr helm would have given.
func run(ctx context.Context, clients *clientCache, req request) (code int, stdout, stderr string) {
	c := &call{ctx: ctx, req: req, clients: clients}
	defer func() {
		for _, stop := range c.stops {
			stop()
		}
	}()
	defer func() {
		if p := recover(); p != nil { // a bug in one request must not end the others
			code = 1
			stdout, stderr = c.stdout.String(), c.stderr.String()+fmt.Sprintf("Error: helmd: %v\n", p)
		}
	}()
	err := c.dispatch()
	var unserved unservedError
	switch {
	case errors.As(err, &unserved):
		return 2, "", "Error: " + unserved.Error() + "\n"
	case err != nil:
		// As cobra prints a command's error, and helm's main exits with 1.
		c.stderr.WriteString("Error: " + err.Error() + "\n")
		return 1, c.stdout.String(), c.stderr.String()
	}
	return 0, c.stdout.String(), c.stderr.String()
}

func (c *call) dispatch() error {
	args := c.req.Args
	if len(args) == 0 {
		return unservedError{"an empty command"}
	}
	c.flags = pflag.NewFlagSet("helm "+args[0], pflag.ContinueOnError)
	c.flags.SetOutput(io.Discard)
	c.flags.StringVar(&c.kubeconfig, "kubeconfig", "", "")
	c.flags.StringVar(&c.kubeContext, "kube-context", "", "")
	c.flags.StringVar(&c.asUser, "kube-as-user", "", "")
	c.flags.StringVarP(&c.namespace, "namespace", "n", "", "")
	switch {
	case args[0] == "upgrade":
		return c.upgrade(args[1:])
	case args[0] == "get" && len(args) > 1 && args[1] == "manifest":
		return c.getManifest(args[2:])
	case args[0] == "rollback":
		return c.rollback(args[1:])
	case args[0] == "history":
		return c.history(args[1:])
	case args[0] == "uninstall":
		return c.uninstall(args[1:])
	}
	return unservedError{fmt.Sprintf("%q", args[0])}
}

// parse reads the flags; a flag helmd does not know (or cannot read) is not served, so
// the CLI answers it with its own words.
func (c *call) parse(args []string, positionals int, atLeast bool) ([]string, error) {
	if err := c.flags.Parse(args); err != nil {
		return nil, unservedError{fmt.Sprintf("these arguments (%v)", err)}
	}
	rest := c.flags.Args()
	if len(rest) < positionals || (!atLeast && len(rest) != positionals) {
		return nil, unservedError{fmt.Sprintf("%d arguments to %s", len(rest), c.req.Args[0])}
	}
	return rest, nil
}

// prepare reads the flags and positionals, then makes the request's helm configuration.
func (c *call) prepare(args []string, positionals int, atLeast bool) ([]string, *action.Configuration, error) {
	rest, err := c.parse(args, positionals, atLeast)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := c.configure()
	return rest, cfg, err
}

// configure makes the request's own helm configuration: its namespace, the shared
// Kubernetes client of its kubeconfig, storage in Secrets (helm's default), and the
// repository and registry paths of the request's environment.
func (c *call) configure() (*action.Configuration, error) {
	c.settings = envSettings(c.req.Env)
	getter, err := c.clients.getter(c.kubeconfig, c.kubeContext, c.asUser, c.req.InCluster, c.namespace)
	if err != nil {
		return nil, err
	}
	// As the CLI's settings.Namespace(): the flag, else the context's, else "default".
	namespace := "default"
	if ns, _, nsErr := getter.ToRawKubeConfigLoader().Namespace(); nsErr == nil && ns != "" {
		namespace = ns
	}
	c.releaseNamespace = namespace
	cfg := action.NewConfiguration()
	// Helm's warnings go to this request's stderr as the CLI prints them (no timestamps).
	cfg.SetLogger(slog.NewTextHandler(&c.stderr, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	if err := cfg.Init(getter, namespace, c.req.Env["HELM_DRIVER"]); err != nil {
		return nil, err
	}
	rememberReleaseLists(cfg, c.req.Env["HELM_DRIVER"], namespace)
	cfg.SetHookOutputFunc(func(_, _, _ string) io.Writer { return &c.stderr })
	options := []registry.ClientOption{
		registry.ClientOptEnableCache(true),
		registry.ClientOptWriter(&c.stdout),
		registry.ClientOptCredentialsFile(c.settings.RegistryConfig),
	}
	if c.caFile != "" {
		httpClient, err := caOnlyClient(c.caFile)
		if err != nil {
			return nil, err
		}
		options = append(options, registry.ClientOptHTTPClient(httpClient))
	}
	registryClient, err := registry.NewClient(options...)
	if err != nil {
		return nil, err
	}
	cfg.RegistryClient = registryClient
	return cfg, nil
}

// caOnlyClient is the registry's HTTP client when --ca-file is given: as the CLI's, it
// trusts that bundle only (not the system roots), with the CLI's wording for a bad file.
func caOnlyClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("can't create TLS config for client: can't read CA file: %q: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("can't create TLS config for client: failed to append certificates from file: %s", caFile)
	}
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			Proxy:           http.ProxyFromEnvironment,
		},
		Timeout: 2 * time.Minute,
	}, nil
}

// envSettings are the CLI's settings with the paths the request's environment names
// (HELM_CACHE_HOME and the others), read as helm reads them.
func envSettings(env map[string]string) *cli.EnvSettings {
	s := cli.New()
	home := func(name, fallback string) string {
		if value := env[name]; value != "" {
			return value
		}
		return fallback
	}
	if config := env["HELM_CONFIG_HOME"]; config != "" {
		s.RepositoryConfig = filepath.Join(config, "repositories.yaml")
		s.RegistryConfig = filepath.Join(config, "registry", "config.json")
	}
	if cache := env["HELM_CACHE_HOME"]; cache != "" {
		s.RepositoryCache = filepath.Join(cache, "repository")
		s.ContentCache = filepath.Join(cache, "content")
	}
	if data := env["HELM_DATA_HOME"]; data != "" {
		s.PluginsDirectory = filepath.Join(data, "plugins")
	}
	s.RepositoryConfig = home("HELM_REPOSITORY_CONFIG", s.RepositoryConfig)
	s.RepositoryCache = home("HELM_REPOSITORY_CACHE", s.RepositoryCache)
	s.ContentCache = home("HELM_CONTENT_CACHE", s.ContentCache)
	s.RegistryConfig = home("HELM_REGISTRY_CONFIG", s.RegistryConfig)
	s.PluginsDirectory = home("HELM_PLUGINS", s.PluginsDirectory)
	return s
}

// hookOnlyWait is how every command the operator runs waits: for hooks only (the operator
// checks health itself), with the options the helm CLI gives every command that waits.
func hookOnlyWait(options []kube.WaitOption) (kube.WaitStrategy, []kube.WaitOption) {
	return kube.HookOnlyStrategy, append(options, kube.WithStatusComputeWorkers(8))
}

func (c *call) getManifest(args []string) error {
	revision := c.flags.Int("revision", 0, "")
	rest, cfg, err := c.prepare(args, 1, false)
	if err != nil {
		return err
	}
	get := action.NewGet(cfg)
	get.Version = *revision
	res, err := get.Run(rest[0])
	if err != nil {
		return err
	}
	accessor, err := release.NewAccessor(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(&c.stdout, accessor.Manifest())
	return nil
}

func (c *call) rollback(args []string) error {
	description := c.flags.String("description", "", "")
	historyMax := c.flags.Int("history-max", cli.New().MaxHistory, "")
	timeout := c.flags.Duration("timeout", 300*time.Second, "")
	rest, cfg, err := c.prepare(args, 1, true)
	if err != nil {
		return err
	}
	if len(rest) > 2 {
		return unservedError{"rollback with more than two arguments"}
	}
	client := action.NewRollback(cfg)
	client.WaitStrategy, client.WaitOptions = hookOnlyWait(client.WaitOptions)
	client.ServerSideApply = "auto"
	client.Description, client.MaxHistory, client.Timeout = *description, *historyMax, *timeout
	if len(rest) > 1 {
		version, err := strconv.Atoi(rest[1])
		if err != nil {
			return fmt.Errorf("could not convert revision to a number: %w", err)
		}
		client.Version = version
	}
	if err := client.Run(rest[0]); err != nil {
		return err
	}
	fmt.Fprint(&c.stdout, "Rollback was a success! Happy Helming!\n")
	return nil
}

func (c *call) history(args []string) error {
	maximum := c.flags.Int("max", 256, "")
	format := c.flags.StringP("output", "o", "table", "")
	rest, cfg, err := c.prepare(args, 1, false)
	if err != nil {
		return err
	}
	if *format != "json" {
		return unservedError{"history as " + *format}
	}
	client := action.NewHistory(cfg)
	client.Max = *maximum
	releasers, err := client.Run(rest[0])
	if err != nil {
		return err
	}
	releases, err := v1Releases(releasers)
	if err != nil {
		return err
	}
	return output.EncodeJSON(&c.stdout, historyRows(releases, client.Max))
}

func (c *call) uninstall(args []string) error {
	timeout := c.flags.Duration("timeout", 300*time.Second, "")
	description := c.flags.String("description", "", "")
	rest, cfg, err := c.prepare(args, 1, true)
	if err != nil {
		return err
	}
	client := action.NewUninstall(cfg)
	client.WaitStrategy, client.WaitOptions = hookOnlyWait(client.WaitOptions)
	client.DeletionPropagation = "background"
	client.Timeout, client.Description = *timeout, *description
	for _, name := range rest {
		res, err := client.Run(name)
		if err != nil {
			return err
		}
		if res != nil && res.Info != "" {
			fmt.Fprintln(&c.stdout, res.Info)
		}
		fmt.Fprintf(&c.stdout, "release \"%s\" uninstalled\n", name)
	}
	return nil
}

// v1Releases: the releases helm stores are v1 ones; any other kind is an error, as in the CLI.
func v1Releases(releasers []release.Releaser) ([]*releasev1.Release, error) {
	out := make([]*releasev1.Release, 0, len(releasers))
	for _, r := range releasers {
		rel, err := v1Release(r)
		if err != nil {
			return nil, err
		}
		out = append(out, rel)
	}
	return out, nil
}

func v1Release(r release.Releaser) (*releasev1.Release, error) {
	switch rel := r.(type) {
	case releasev1.Release:
		return &rel, nil
	case *releasev1.Release:
		return rel, nil
	case nil:
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported release type: %T", r)
}

// lockedBuffer is a bytes.Buffer that several goroutines may write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
