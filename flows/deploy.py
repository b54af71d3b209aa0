"""Per-domain Prefect deployments of ``refresh-domain``, each with its own schedule and defaults."""

from __future__ import annotations

from pathlib import Path

from prefect.deployments.runner import EntrypointType

from flows.refresh import RefreshParams, refresh_domain

DOMAINS = ("ecommerce", "content", "social", "travel")

#: Nightly, staggered so two domains never train at the same time on one worker.
SCHEDULES = {
    "ecommerce": "0 2 * * *",
    "content": "0 3 * * *",
    "social": "0 4 * * *",
    "travel": "0 5 * * *",
}


def deployment_name(domain: str) -> str:
    return f"refresh-{domain}"


def build_deployments(data_root: Path | None = None, out: str = "out", graph: str = "embedded",
                      domains: tuple[str, ...] = DOMAINS, paused: bool = False):
    """One ``RunnerDeployment`` per domain.

    Args:
        data_root: folder holding one dataset folder per domain (``<root>/<domain>``); the
            bundled samples when left out.
        out: output root the runs publish to.
        graph: ``embedded`` or a Bolt URI (credentials from a Secret block or the environment).
        domains: which domains to deploy.
        paused: register the schedules paused (useful for tests and staging).
    """
    from quality.synth import sample_path

    deps = []
    for domain in domains:
        folder = (Path(data_root) / domain) if data_root else sample_path(domain)
        params = RefreshParams(dataset_dir=str(Path(folder).resolve()), out=str(Path(out).resolve()),
                               graph=graph)
        deps.append(refresh_domain.to_deployment(
            name=deployment_name(domain),
            cron=SCHEDULES[domain],
            paused=paused,
            parameters={"params": params.model_dump(mode="json")},
            tags=["kgrec", domain],
            description=f"Nightly refresh of the {domain} domain: gate, graph, text, model, publish.",
            entrypoint_type=EntrypointType.MODULE_PATH,
        ))
    return deps


def register(deployments) -> list[str]:
    """Create or update the deployments on the Prefect API (``PREFECT_API_URL``)."""
    return [str(d.apply()) for d in deployments]


def serve(deployments, limit: int = 1) -> None:
    """Register the deployments and execute their runs in this process until interrupted."""
    from prefect import serve as prefect_serve

    prefect_serve(*deployments, limit=limit)
