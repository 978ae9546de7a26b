package main

import (
	"errors"
	"testing"

	"k8s.io/client-go/kubernetes/fake"

	"helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"
)

func listsMade(clients *fake.Clientset) int {
	lists := 0
	for _, a := range clients.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "secrets" {
			lists++
		}
	}
	return lists
}

func revision(name string, version int, status common.Status) *releasev1.Release {
	return &releasev1.Release{Name: name, Version: version, Namespace: "team", Info: &releasev1.Info{Status: status}}
}

// What a first `upgrade --install` asks of storage, in helm's order: the history (is there
// a release?), again (is the name free?), again when the new revision is stored (prune to
// --history-max). One list reaches the API server; what the request writes is seen after.
func TestOneActionListsAReleaseHistoryOnceUntilItWrites(t *testing.T) {
	clients := fake.NewClientset()
	store := storage.Init(driver.NewSecrets(newRequestSecrets(clients.CoreV1().Secrets("team"))))
	store.MaxHistory = 10
	for range 2 {
		if history, err := store.History("web"); !errors.Is(err, driver.ErrReleaseNotFound) || len(history) != 0 {
			t.Fatalf("history %v, %v", history, err)
		}
	}
	if err := store.Create(revision("web", 1, common.StatusPendingInstall)); err != nil {
		t.Fatal(err)
	}
	if got := listsMade(clients); got != 1 {
		t.Fatalf("%d lists before the first revision was stored, want 1", got)
	}
	history, err := store.History("web") // after its own write: asked again, and seen
	if err != nil || len(history) != 1 {
		t.Fatalf("history after the write: %v, %v", history, err)
	}
	if got := listsMade(clients); got != 2 {
		t.Fatalf("%d lists after the write, want 2", got)
	}
	// A list answered from memory is a copy: changing what one caller got changes nothing
	// for the next.
	again, _ := store.History("web")
	again[0].(*releasev1.Release).Info.Status = common.StatusFailed
	last, _ := store.Last("web")
	if status := last.(*releasev1.Release).Info.Status; status != common.StatusPendingInstall {
		t.Fatalf("a caller's change leaked into the next answer: %s", status)
	}
	// Another release's history is its own list.
	if _, err := store.History("api"); !errors.Is(err, driver.ErrReleaseNotFound) {
		t.Fatal(err)
	}
	if got := listsMade(clients); got != 3 {
		t.Fatalf("%d lists, want 3", got)
	}
}
