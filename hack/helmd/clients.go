package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"helm.sh/helm/v4/pkg/kubeenv"
)

// The helm CLI's defaults for its Kubernetes client (pkg/cli): a burst of 100 requests,
// client-go's QPS, and 300 for discovery.
const (
	burstLimit     = 100
	discoveryBurst = 300
	// A discovery miss refetches at most this often per cluster and identity: a kind that a
	// chart's CRD brought is then found, a kind that does not exist costs one refetch.
	discoveryStale = 2 * time.Second
)

// userAgent is what the helm CLI sends; the build sets the version.
var userAgent = "Helm/4"

// clientKey names one cached Kubernetes client: the kubeconfig's content (the operator
// writes a new temporary file per call, so the path says nothing), its context and the
// user helm impersonates.
type clientKey struct {
	kubeconfig string // sha256 of the file's content and its directory; "" for none
	context    string
	user       string
	inCluster  bool
}

// sharedClient is the expensive part of a helm run kept between requests: the REST
// config, discovery held in memory and the REST mapper over it.
type sharedClient struct {
	loader    clientcmd.ClientConfig
	config    *rest.Config
	discovery *staleAwareDiscovery
	mapper    meta.RESTMapper
	lastUsed  time.Time
}

type clientCache struct {
	idle    time.Duration
	mu      sync.Mutex
	clients map[clientKey]*sharedClient
}

func newClientCache(idle time.Duration) *clientCache {
	return &clientCache{idle: idle, clients: map[clientKey]*sharedClient{}}
}

// evictLoop drops the clients unused for `idle`: a deleted Cluster or a rotated kubeconfig
// leaves nothing behind for long.
func (c *clientCache) evictLoop() {
	for range time.Tick(c.idle / 4) {
		c.mu.Lock()
		for key, client := range c.clients {
			if time.Since(client.lastUsed) > c.idle {
				delete(c.clients, key)
			}
		}
		c.mu.Unlock()
	}
}

// getter is the RESTClientGetter of one request: the shared client of its key, seen
// through the request's namespace. A kubeconfig that gives no usable client is not cached
// (its error is the CLI's, raised where the CLI raises it).
func (c *clientCache) getter(kubeconfig, context, user string, inCluster bool, namespace string) (*requestGetter, error) {
	key := clientKey{context: context, user: user, inCluster: inCluster}
	if kubeconfig != "" {
		content, err := os.ReadFile(kubeconfig)
		if err != nil {
			// Not cached: helm's own loader reports it, in the CLI's words.
			loader := clientLoader(kubeconfig, context, user, inCluster)
			_, err = loader.ClientConfig()
			return &requestGetter{loader: loader, namespace: namespace, err: err}, nil
		}
		sum := sha256.New()
		sum.Write(content)
		sum.Write([]byte{0})
		sum.Write([]byte(kubeconfig[:lastSlash(kubeconfig)+1]))
		key.kubeconfig = hex.EncodeToString(sum.Sum(nil))
	}
	c.mu.Lock()
	shared, ok := c.clients[key]
	if ok {
		shared.lastUsed = time.Now()
	}
	c.mu.Unlock()
	if !ok {
		loader := clientLoader(kubeconfig, context, user, inCluster)
		config, err := loader.ClientConfig()
		if err != nil {
			// Not cached: the request meets the error where the CLI would.
			return &requestGetter{loader: loader, namespace: namespace, err: err}, nil
		}
		shared, err = newSharedClient(loader, config)
		if err != nil {
			return &requestGetter{loader: loader, namespace: namespace, err: err}, nil
		}
		c.mu.Lock()
		if existing, raced := c.clients[key]; raced {
			shared = existing
		} else {
			c.clients[key] = shared
		}
		shared.lastUsed = time.Now()
		c.mu.Unlock()
	}
	return &requestGetter{loader: shared.loader, shared: shared, namespace: namespace}, nil
}

func lastSlash(path string) int {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return i
		}
	}
	return -1
}

// clientLoader reads the kubeconfig as the CLI does, except that without inCluster an
// incomplete kubeconfig is an error, never a fallback to this process's own in-cluster
// identity (the operator's ServiceAccount).
func clientLoader(kubeconfig, context, user string, inCluster bool) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.DefaultClientConfig = &clientcmd.DefaultClientConfig
	rules.ExplicitPath = kubeconfig
	// As the CLI's flags set them (cli-runtime's ConfigFlags): an empty kubeconfig means
	// the default server, as in the CLI, whose error message then names it.
	overrides := &clientcmd.ConfigOverrides{ClusterDefaults: clientcmd.ClusterDefaults, CurrentContext: context}
	overrides.AuthInfo.Impersonate = user
	if inCluster {
		return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	}
	raw, err := rules.Load()
	if err != nil {
		return errorLoader{err}
	}
	return clientcmd.NewNonInteractiveClientConfig(*raw, context, overrides, rules)
}

func newSharedClient(loader clientcmd.ClientConfig, config *rest.Config) (*sharedClient, error) {
	config.Burst = burstLimit
	config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return &boundedBodies{&kubeenv.RetryingRoundTripper{Wrapped: rt}, maxResponseBytes}
	})
	config.UserAgent = userAgent
	discoveryConfig := rest.CopyConfig(config)
	discoveryConfig.Burst = discoveryBurst
	direct, err := discovery.NewDiscoveryClientForConfig(discoveryConfig)
	if err != nil {
		return nil, err
	}
	cached := &staleAwareDiscovery{CachedDiscoveryInterface: memory.NewMemCacheClient(direct), filled: time.Now()}
	deferred := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	return &sharedClient{
		loader:    loader,
		config:    config,
		discovery: cached,
		mapper:    restmapper.NewShortcutExpander(deferred, cached, nil),
	}, nil
}

// maxResponseBytes bounds one answer of a Kubernetes API server (but a watch's stream). A
// tenant's kubeconfig may name a server of its own, and helmd serves every tenant from one
// process: a server answering discovery with gigabytes must fail that tenant's request,
// not run helmd (and every other tenant's helm action in it) out of memory.
const maxResponseBytes = 64 << 20

type boundedBodies struct {
	wrapped http.RoundTripper
	limit   int64
}

func (b *boundedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := b.wrapped.RoundTrip(req)
	if err != nil || resp.Body == nil || req.URL.Query().Get("watch") == "true" {
		return resp, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: b.limit}
	return resp, nil
}

// boundedBody reads at most `left` bytes, then fails (never a silently cut answer).
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte past the bound at most: enough to tell an answer too large
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("the API server's answer is larger than %d MiB", maxResponseBytes>>20)
	}
	return n, err
}

// staleAwareDiscovery is discovery cached in memory that reports itself stale a moment after
// it was filled: the REST mapper then refetches once on a kind it does not know (as the
// CLI's disk cache does on a miss) instead of failing for as long as the process lives.
type staleAwareDiscovery struct {
	discovery.CachedDiscoveryInterface
	mu     sync.Mutex
	filled time.Time
}

func (d *staleAwareDiscovery) Fresh() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Since(d.filled) < discoveryStale
}

// Invalidate refetches discovery, at most once per discoveryStale: helm invalidates it for
// every action's capabilities, and with one client shared by every release of a cluster
// (and its one rate limiter, client-go's 5 requests a second once the burst is spent) a
// refetch per action throttled a wave of 500 releases to two a second. A kind a moment
// old is still found: the REST mapper refetches on a miss once the cache is not fresh.
func (d *staleAwareDiscovery) Invalidate() {
	d.mu.Lock()
	if time.Since(d.filled) < discoveryStale {
		d.mu.Unlock()
		return
	}
	d.filled = time.Now()
	d.mu.Unlock()
	d.CachedDiscoveryInterface.Invalidate()
}

// requestGetter is one request's genericclioptions.RESTClientGetter.
type requestGetter struct {
	loader    clientcmd.ClientConfig
	shared    *sharedClient
	namespace string
	err       error
}

var _ genericclioptions.RESTClientGetter = (*requestGetter)(nil)

func (g *requestGetter) ToRESTConfig() (*rest.Config, error) {
	if g.err != nil {
		return nil, g.err
	}
	// A copy: helm's kube client may set fields on it (a request's own rate limiter
	// is still shared through the transport cache, as within one CLI process).
	return rest.CopyConfig(g.shared.config), nil
}

func (g *requestGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	if g.err != nil {
		return nil, g.err
	}
	return g.shared.discovery, nil
}

func (g *requestGetter) ToRESTMapper() (meta.RESTMapper, error) {
	if g.err != nil {
		return nil, g.err
	}
	return g.shared.mapper, nil
}

func (g *requestGetter) ToRawKubeConfigLoader() clientcmd.ClientConfig {
	return namespacedLoader{inner: g.loader, namespace: g.namespace}
}

// namespacedLoader is the kubeconfig with the request's --namespace, as the CLI's flag sets it.
type namespacedLoader struct {
	inner     clientcmd.ClientConfig
	namespace string
}

func (l namespacedLoader) Namespace() (string, bool, error) {
	if l.namespace != "" {
		return l.namespace, true, nil
	}
	return l.inner.Namespace()
}

func (l namespacedLoader) RawConfig() (clientcmdapi.Config, error) { return l.inner.RawConfig() }
func (l namespacedLoader) ClientConfig() (*rest.Config, error)     { return l.inner.ClientConfig() }
func (l namespacedLoader) ConfigAccess() clientcmd.ConfigAccess    { return l.inner.ConfigAccess() }

// errorLoader is a kubeconfig that could not be read: every use returns the error.
type errorLoader struct{ err error }

func (e errorLoader) RawConfig() (clientcmdapi.Config, error) { return clientcmdapi.Config{}, e.err }
func (e errorLoader) ClientConfig() (*rest.Config, error)     { return nil, e.err }
func (e errorLoader) Namespace() (string, bool, error)        { return "", false, e.err }
func (e errorLoader) ConfigAccess() clientcmd.ConfigAccess    { return nil }
