"""A study in the archive store: one run folder of kind "study" holding its base case (`case.json`) and its
document (`study.json`: settings, members table, fan, indices, summary), listed by `vp.runs()` and
`api/runs` like any run and loaded back by `vp.load(run_id)`."""
from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Any

from .study import STUDY_FILE, Study

if TYPE_CHECKING:  # pragma: no cover
    from ..store import RunStore


def save_study(study: Study, store: Any, *, source: str, started: float, finished: float,
               owner: str | None = None, run_id: str | None = None) -> str:
    """Record a finished study (status succeeded) in `store` (True / None: the default store; a RunStore
    or a folder); its run id."""
    from .. import _owner, _store

    target: RunStore = _store(store)
    record = target.save(study.case, source=source, owner=_owner(getpass) if owner is None else owner,
                         status="succeeded", started=started, finished=finished, run_id=run_id, kind="study",
                         documents={STUDY_FILE: study.to_dict()})
    return record.id


def load_study(store: "RunStore", run_id: str) -> Study:
    """The Study stored as run `run_id` (RunNotFound when it has no study document)."""
    study = Study.from_dict(store.load_document(run_id, STUDY_FILE), case=store.load_case(run_id))
    study.run_id = run_id
    return study
