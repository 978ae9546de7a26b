"""The dashboard (issue 14) in a real Chromium (Debian's package, driven by Playwright)
against `alecton dashboard` on the real control plane: a deploy shows up live, a
promotion is approved, a version deployed and rolled back from the page, and the console
stays clean. Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alecton.local.controlplane import free_port
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright

from tests.integration import resources as r
from tests.integration.harness import CHARTS, REPO, OperatorProcess, WebProcess
from tests.integration.test_promotion import promotions

GOOD = "ghcr.io/stefanprodan/podinfo:6.7.0"
STAGING = {"versions": {"semver": ">=1.0.0 <2"}}
PROD = {"versions": {"semver": ">=1.0.0 <2"}, "from": "staging", "soak": "2s", "approval": "Manual"}
SHOTS = REPO / "test-artifacts" / "dashboard"
LIVE = 150_000  # ms: a helm run and a health check, on 2 shared cores


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Debian's chromium is needed (.ci/run installs it)"
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def row(page: Page, target: str, field: str) -> Locator:
    cell = page.locator(f'tr[data-app="web"][data-target="{target}"] [data-field="{field}"]')
    return cell.locator(".badge") if field == "phase" else cell  # the phase's badge, without notes


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("operator", ["helm"], indirect=True)
def test_dashboard_in_a_real_browser(operator: OperatorProcess, browser: Browser, tmp_path: Path) -> None:
    cluster = operator.cluster
    cluster.kubectl("apply", "-f", str(REPO / "deploy" / "promotion-approvals.yaml"))
    ns = cluster.new_namespace("dash")
    app = r.application("web", f"{ns}-staging", healthTimeout="2m")
    app["spec"]["targets"].append(
        {"name": "prod", "cluster": "target-b", "namespace": f"{ns}-prod", "values": {}}
    )
    cluster.apply(r.cluster(), app, namespace=ns)
    cluster.apply(r.promoted("web", STAGING), r.promoted("web", PROD, target="prod"), namespace=ns)

    token = secrets.token_urlsafe(32)
    dashboard = WebProcess(
        ["dashboard", "--no-browser", "--kubeconfig", cluster.kubeconfig, "--context", "alecton-a", "-n", ns,
         "--helm", str(cluster.bin / "helm"), "--charts-dir", str(CHARTS)],
        free_port(),
        tmp_path,
        env={"ALECTON_DASHBOARD_TOKEN": token},
    )  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        # The printed URL's token (in the fragment, never sent) is kept by the page, not the URL.
        page.goto(f"{dashboard.url}/#token={token}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        assert "token" not in page.url
        expect(page.locator("#live")).to_have_text("live")
        expect(row(page, "staging", "phase")).to_have_text("Pending")  # waiting for a version
        page.evaluate("window.sameDocument = true")  # gone if anything reloads the page
        shot(page, "01-nothing-deployed")

        # CI records an Image: staging deploys it by itself, and the page shows it live.
        cluster.apply(r.image("web", "1.0.0", GOOD), namespace=ns)
        expect(row(page, "staging", "phase")).to_have_text("Deployed", timeout=LIVE)
        expect(row(page, "staging", "version")).to_contain_text("1.0.0")
        shot(page, "02-staging-deployed-live")

        # After the soak, prod waits for a person: look at the diff, approve.
        promotion = page.locator('li[data-promotion][data-target="prod"][data-to="1.0.0"]')
        expect(promotion).to_be_visible(timeout=LIVE)
        promotion.locator('[data-action="diff"]').click()
        expect(promotion.locator('[data-role="diff"] pre').first).to_be_visible(timeout=60_000)
        shot(page, "03-promotion-with-diff")
        promotion.locator('[data-action="approve"]').click()
        page.locator("#decision-dialog textarea[name=comment]").fill("looks good")
        page.locator('#decision-dialog [data-action="confirm-decision"]').click()
        expect(row(page, "prod", "phase")).to_have_text("Deployed", timeout=LIVE)
        expect(page.locator("li[data-promotion]")).to_have_count(0)
        (approved,) = [p for p in promotions(cluster, ns, "web-prod") if p["spec"]["toVersion"] == "1.0.0"]
        assert approved["spec"]["approval"]["comment"] == "looks good"
        assert approved["spec"]["approval"]["by"] == "alecton-admin"  # the kubeconfig's user, stamped

        # A second version: staging takes it; then a person deploys it to prod from the page.
        built = r.image("web", "1.1.0", GOOD)  # CI says which commit it was built from (issue 25)
        built["spec"]["source"] = {"repository": "github.com/org/web", "revision": "4f2c1e9a0b7d",
                                   "url": "https://github.com/org/web/commit/4f2c1e9a0b7d"}  # fmt: skip
        cluster.apply(built, namespace=ns)
        expect(row(page, "staging", "revision")).to_have_text("2", timeout=LIVE)
        expect(row(page, "staging", "phase")).to_have_text("Deployed", timeout=LIVE)
        page.locator('tr[data-app="web"][data-target="prod"] [data-action="deploy"]').click()
        page.locator("#deploy-dialog input[name=version]").fill("1.1.0")
        page.locator('#deploy-dialog [data-action="confirm-deploy"]').click()
        expect(page.locator("#deploy-dialog")).not_to_be_visible()
        expect(row(page, "prod", "revision")).to_have_text("2", timeout=LIVE)
        expect(row(page, "prod", "phase")).to_have_text("Deployed", timeout=LIVE)
        assert cluster.get("deployments.alecton.dev", "web-prod", ns)["spec"]["version"] == "1.1.0"
        # A version set by hand holds automation, and the page says by whom.
        prod = page.locator('tr[data-app="web"][data-target="prod"]')
        expect(prod.locator('[data-field="phase"] .tag')).to_have_text("held", timeout=30_000)
        expect(prod.locator('[data-field="message"]')).to_contain_text("set by alecton-web")
        expect(page.locator('#images tr[data-image="web"]')).to_contain_text("1.1.0")
        commit = page.locator('#images tr[data-image="web"] a[data-field="commit"]').first
        expect(commit).to_have_text("4f2c1e9")
        expect(commit).to_have_attribute("href", "https://github.com/org/web/commit/4f2c1e9a0b7d")
        shot(page, "04-prod-deployed-by-hand")

        # Roll staging back to revision 1 from its history.
        page.locator('tr[data-app="web"][data-target="staging"] [data-action="details"]').click()
        history = page.locator("#history")
        expect(history.locator("tr[data-revision]")).to_have_count(2)
        expect(history.locator('tr[data-revision="2"] [data-field="cause"]')).to_have_text("promotion")
        expect(history.locator('tr[data-revision="2"] [data-field="commit"]')).to_have_text("4f2c1e9")
        history.locator('[data-action="rollback"][data-revision="1"]').click()
        page.locator('#rollback-dialog [data-action="confirm-rollback"]').click()
        expect(row(page, "staging", "phase")).to_have_text("RolledBack", timeout=LIVE)
        expect(row(page, "staging", "running")).to_contain_text("1.0.0")
        expect(history.locator('tr[data-revision="3"] [data-field="cause"]')).to_have_text("rollback")
        shot(page, "05-staging-rolled-back")

        assert page.evaluate("window.sameDocument") is True  # all of it live, no reload
        assert context.cookies() == []  # the token is never a cookie (those reach every port)
        # Another page of the browser without the token sees nothing.
        stranger = browser.new_context().new_page()
        stranger.goto(dashboard.url)
        expect(stranger.locator("#toast")).to_contain_text("Not signed in")
        stranger.context.close()
        page.set_viewport_size({"width": 375, "height": 800})
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "06-phone-width")
        assert problems == []
    finally:
        context.close()
        dashboard.stop()


@pytest.mark.parametrize("operator", ["helm"], indirect=True)
def test_freeze_banner_and_a_refused_deploy(
    operator: OperatorProcess, browser: Browser, tmp_path: Path
) -> None:
    """An active freeze shows as a banner (at phone width too); a deploy from the dialog is
    refused naming it, and goes through with an override reason; ending it hides the banner."""
    cluster = operator.cluster
    ns = cluster.new_namespace("dash-freeze")
    cluster.apply(
        r.cluster(), r.application("web", f"{ns}-staging"), r.image("web", "1.0.0", GOOD), namespace=ns
    )
    freeze = {"apiVersion": r.API, "kind": "Freeze", "metadata": {"name": "release-week"}}
    freeze["spec"] = {"reason": "quarter close <b>not markup</b>"}
    cluster.apply(freeze, namespace=ns)

    token = secrets.token_urlsafe(32)
    dashboard = WebProcess(
        ["dashboard", "--no-browser", "--kubeconfig", cluster.kubeconfig, "--context", "alecton-a", "-n", ns],
        free_port(),
        tmp_path,
        env={"ALECTON_DASHBOARD_TOKEN": token},
    )
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # The refused deploy is a 423 answer, which Chromium reports as a failed resource load.
        expected = "status of 423" in message.text
        if message.type in ("error", "warning") and not expected:
            problems.append(f"console {message.type}: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        page.goto(f"{dashboard.url}/#token={token}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        banner = page.locator("#freeze-banner")
        expect(banner).to_be_visible()
        expect(banner.locator('li[data-freeze="release-week"]')).to_have_text(
            "Freeze release-week: quarter close <b>not markup</b> (until it is ended)"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "10-freeze-banner-phone")

        page.locator('tr[data-app="web"][data-target="staging"] [data-action="deploy"]').click()
        page.locator("#deploy-dialog input[name=version]").fill("1.0.0")
        page.locator('#deploy-dialog [data-action="confirm-deploy"]').click()
        expect(page.locator("#toast")).to_contain_text("frozen by Freeze release-week")
        expect(page.locator("#deploy-dialog")).to_be_visible()  # still open: add a reason
        assert cluster.get("deployments.alecton.dev", "web-staging", ns) is None
        page.locator("#deploy-dialog input[name=override]").fill("hotfix INC-7")
        page.locator('#deploy-dialog [data-action="confirm-deploy"]').click()
        expect(page.locator("#deploy-dialog")).not_to_be_visible()
        deployed = cluster.get("deployments.alecton.dev", "web-staging", ns) or {}
        assert deployed["metadata"]["annotations"]["alecton.dev/freeze-override"] == "1:hotfix INC-7"

        cluster.kubectl("delete", "freezes.alecton.dev", "release-week", "-n", ns)
        expect(banner).to_be_hidden(timeout=45_000)  # the banner looks again every 30 s
        assert problems == []
    finally:
        context.close()
        dashboard.stop()
