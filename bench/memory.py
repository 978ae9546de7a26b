"""Idle memory of the operator holding many Images, Applications and Deployments."""

from __future__ import annotations

import time
from typing import Any

from harness import API, Bench, Operator, new_namespace, workload
from machine import tree_rss_mib


def memory(bench: Bench, images: int, applications: int, deployments: int) -> dict[str, Any]:
    ns = new_namespace(bench, "memory")
    docs = workload(ns, deployments, "memory-web", suspend=True)
    docs += [
        {
            "apiVersion": API,
            "kind": "Image",
            "metadata": {"name": f"img-{i}"},
            "spec": {"name": f"img{i % 50}", "version": str(i), "image": f"r/img:{i}"},
        }
        for i in range(images - 1)
    ]
    present_apps = sum(d["kind"] == "Application" for d in docs)
    for a in range(present_apps, applications):
        docs.append(
            {
                "apiVersion": API,
                "kind": "Application",
                "metadata": {"name": f"extra{a}"},
                "spec": {"chart": "webapp", "image": "web", "targets": []},
            }
        )
    bench.apply(docs, ns)
    operator = Operator(bench, 4, ns)
    try:
        bench.wait(lambda: operator.metric("alecton_reconciles_total") >= deployments, 300, 0.5)
        time.sleep(5)
        return {
            "images": images,
            "applications": applications,
            "deployments": deployments,
            "rss_mib": tree_rss_mib([operator.proc.pid]),  # with any helm process it keeps
        }
    finally:
        operator.stop()
