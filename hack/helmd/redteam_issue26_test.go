package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Red team, issue 26: helmd's cached clients are filed under the kubeconfig's content (and
// directory), context and impersonated user. Two tenants whose requests differ in any of
// them must never be handed one client (one REST config, one identity).
const sharedContent = `apiVersion: v1
kind: Config
current-context: b
clusters:
- name: b
  cluster: {server: "https://127.0.0.1:6443"}
contexts:
- name: b
  context: {cluster: b, user: u}
- name: other
  context: {cluster: b, user: v}
users:
- name: u
  user: {token: tenant-a}
- name: v
  user: {token: tenant-b}
`

func writeKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tenant.kubeconfig")
	if err := os.WriteFile(path, []byte(sharedContent), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRedteamIdenticalKubeconfigsNeverShareAClientAcrossIdentities(t *testing.T) {
	cache := newClientCache(time.Minute)
	first := writeKubeconfig(t, t.TempDir())
	second := writeKubeconfig(t, t.TempDir()) // same content, another directory

	type call struct {
		path, context, user, wantUser, wantToken string
	}
	calls := []call{
		{first, "", "", "", "tenant-a"},
		{first, "", "system:serviceaccount:a:alecton-a", "system:serviceaccount:a:alecton-a", "tenant-a"},
		{first, "", "system:serviceaccount:b:alecton-b", "system:serviceaccount:b:alecton-b", "tenant-a"},
		{first, "other", "", "", "tenant-b"},
		{second, "", "", "", "tenant-a"},
	}
	seen := map[*sharedClient]int{}
	for i, c := range calls {
		getter, err := cache.getter(c.path, c.context, c.user, false, "ns")
		if err != nil || getter.err != nil {
			t.Fatalf("call %d: %v %v", i, err, getter.err)
		}
		if previous, shared := seen[getter.shared]; shared {
			t.Fatalf("calls %d and %d share one cached client", previous, i)
		}
		seen[getter.shared] = i
		config, err := getter.ToRESTConfig()
		if err != nil {
			t.Fatal(err)
		}
		if config.Impersonate.UserName != c.wantUser || config.BearerToken != c.wantToken {
			t.Fatalf("call %d acts as %q with token %q", i, config.Impersonate.UserName, config.BearerToken)
		}
	}
	// The same request again is served from the cache (what the cache is for).
	again, _ := cache.getter(first, "", "system:serviceaccount:a:alecton-a", false, "ns")
	if seen[again.shared] != 1 {
		t.Fatalf("the same identity got another client")
	}
}

func TestRedteamARewrittenKubeconfigIsANewClient(t *testing.T) {
	cache := newClientCache(time.Minute)
	path := writeKubeconfig(t, t.TempDir())
	before, _ := cache.getter(path, "", "", false, "ns")
	// The operator writes each call's kubeconfig to a new file; a path reused with other
	// credentials (a rotated Secret) must not keep the old identity.
	if err := os.WriteFile(path, []byte(strings.Replace(sharedContent, "tenant-a", "tenant-c", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	after, _ := cache.getter(path, "", "", false, "ns")
	config, err := after.ToRESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if after.shared == before.shared || config.BearerToken != "tenant-c" {
		t.Fatalf("a rewritten kubeconfig kept the old client (token %q)", config.BearerToken)
	}
}

func TestRedteamNoKubeconfigWithoutInClusterNeverReachesTheInClusterServer(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	cache := newClientCache(time.Minute)
	// Without inCluster and without a kubeconfig, helmd reads no in-cluster identity either.
	t.Setenv("HOME", t.TempDir())
	getter, _ := cache.getter("", "", "", false, "ns")
	if getter.err == nil {
		config, _ := getter.ToRESTConfig()
		if config.Host == "https://10.0.0.1:443" {
			t.Fatalf("a request without inCluster reached the in-cluster server")
		}
	}
}
