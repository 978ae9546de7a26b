package main

import (
	"context"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// requestSecrets is one request's view of the release namespace's Secrets: a label-selected
// list it has already made is answered again from its first answer until the request
// itself writes a Secret.
//
// Why: helm asks for the same release history three or four times in one action
// (`upgrade --install` checks for a release, install looks for a free name, and storing a
// revision prunes the history: three identical `name=X,owner=helm` lists for a first
// install), and the API server answers each by matching the label selector against every
// Secret of the namespace. With 10,000 releases in one namespace that matching was a
// quarter of the target API server's CPU (docs/benchmarks.md). Another writer of the same
// release between two lists of one action is a race helm never guarded against either (it
// takes no lock); a write by this request forgets everything listed.
type requestSecrets struct {
	corev1.SecretInterface
	mu    sync.Mutex
	lists map[string]*v1.SecretList // label selector -> the first answer
}

func newRequestSecrets(inner corev1.SecretInterface) *requestSecrets {
	return &requestSecrets{SecretInterface: inner, lists: map[string]*v1.SecretList{}}
}

func (s *requestSecrets) List(ctx context.Context, opts metav1.ListOptions) (*v1.SecretList, error) {
	remembered := opts.LabelSelector != "" && opts.FieldSelector == "" && opts.ResourceVersion == "" &&
		opts.Limit == 0 && opts.Continue == ""
	if !remembered {
		return s.SecretInterface.List(ctx, opts)
	}
	s.mu.Lock()
	known, ok := s.lists[opts.LabelSelector]
	s.mu.Unlock()
	if ok {
		return known.DeepCopy(), nil // the caller may change what it is given
	}
	list, err := s.SecretInterface.List(ctx, opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.lists[opts.LabelSelector] = list.DeepCopy()
	s.mu.Unlock()
	return list, nil
}

func (s *requestSecrets) forget() {
	s.mu.Lock()
	clear(s.lists)
	s.mu.Unlock()
}

func (s *requestSecrets) Create(ctx context.Context, secret *v1.Secret, opts metav1.CreateOptions) (*v1.Secret, error) {
	s.forget()
	return s.SecretInterface.Create(ctx, secret, opts)
}

func (s *requestSecrets) Update(ctx context.Context, secret *v1.Secret, opts metav1.UpdateOptions) (*v1.Secret, error) {
	s.forget()
	return s.SecretInterface.Update(ctx, secret, opts)
}

func (s *requestSecrets) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	s.forget()
	return s.SecretInterface.Delete(ctx, name, opts)
}

func (s *requestSecrets) DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, list metav1.ListOptions) error {
	s.forget()
	return s.SecretInterface.DeleteCollection(ctx, opts, list)
}

// rememberReleaseLists gives helm's Secrets storage (the default driver, which `cfg.Init`
// made) a requestSecrets. Any other driver, or a client that cannot be made here, keeps
// helm's own storage: its errors then come at first use, in helm's words, as before.
func rememberReleaseLists(cfg *action.Configuration, helmDriver, namespace string) {
	switch helmDriver {
	case "", "secret", "secrets":
	default:
		return
	}
	client, ok := cfg.KubeClient.(*kube.Client)
	if !ok {
		return
	}
	clients, err := client.Factory.KubernetesClientSet()
	if err != nil {
		return
	}
	secrets := driver.NewSecrets(newRequestSecrets(clients.CoreV1().Secrets(namespace)))
	secrets.SetLogger(cfg.Logger().Handler())
	cfg.Releases = storage.Init(secrets)
}
