"""One report over several studies that ran the same candidates with different training seeds.

Copy a study module once per seed, changing only ``"seed"`` in its ``train`` settings, run
each (``infomin study run studies/quickstart_s1.py``), then read them as one study whose
candidates have one seed per copy:

    python docs/combine_seed_studies.py quickstart_s0 quickstart_s1 quickstart_s2 --out report-3-seeds

Candidates are matched by their parameters (:func:`infomin.search.results.combine`); each
study's trials recorded their seed in the trial's ``train`` attribute. The report is
written to ``--out`` (table.csv, seeds.csv, report.md, sweet_spot.png) and printed as
``infomin study report`` prints it; nothing is logged to MLflow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from infomin.cli.study import print_report
from infomin.search import storage as st
from infomin.search.report import build_report, write_report
from infomin.search.results import candidates_from_study, combine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("studies", nargs="+", help="study names in the storage (one per seed)")
    p.add_argument("--storage", default=None, help="Optuna storage URL (default: infomin's default)")
    p.add_argument("--out", default="report-seeds", help="folder for the report's files")
    p.add_argument("--name", default=None, help="the report's title (default: the first study's name)")
    args = p.parse_args(argv)
    url = st.normalize_url(args.storage or st.default_storage_url())
    studies = [st.load_study(url, name) for name in args.studies]
    first = studies[0]
    metric = first.user_attrs.get("infomin.metric", "eval/linear_acc")
    candidates = combine(*(candidates_from_study(s) for s in studies))
    report = build_report(candidates, metric=metric, maximize=first.direction.name.lower() != "minimize",
                          name=args.name or f"{' + '.join(args.studies)}",
                          question=first.user_attrs.get("infomin.question", ""),
                          fixed=dict(first.user_attrs.get("infomin.fixed") or {}))
    write_report(report, args.out)
    print_report(report, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
