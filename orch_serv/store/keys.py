"""Redis key names. Per-run keys share the hash tag ``{run_id}`` (ready for Redis Cluster)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names under one prefix."""

    prefix: str

    def run(self, run_id: str) -> str:
        """The run's hash."""
        return f"{self.prefix}:run:{{{run_id}}}"

    def events(self, run_id: str) -> str:
        """The run's append-only event list."""
        return f"{self.prefix}:run:{{{run_id}}}:ev"

    def statuses(self, run_id: str) -> str:
        """The set of statuses the run reached."""
        return f"{self.prefix}:run:{{{run_id}}}:st"

    def once(self, run_id: str, token: str) -> str:
        """An idempotency mark a handler set with ``ctx.once`` (token: command id and key)."""
        return f"{self.prefix}:run:{{{run_id}}}:once:{token}"

    def run_timers(self, run_id: str) -> str:
        """The members of the timer set that belong to the run (to clear them at the end)."""
        return f"{self.prefix}:run:{{{run_id}}}:tm"

    def with_timers(self, run_id: str) -> list[str]:
        """The keys a script that sets a run's timers touches: hash, events, timer set and
        the run's own timer members."""
        return [self.run(run_id), self.events(run_id), self.timers, self.run_timers(run_id)]

    @property
    def timers(self) -> str:
        """Every timer (dispatch, heartbeat, execution, total, retry, deadline) by due ms."""
        return f"{self.prefix}:timers"

    def by_key(self, key: str) -> str:
        """External key -> run id."""
        return f"{self.prefix}:key:{key}"

    def path_index(self, path: str) -> str:
        """Run ids whose history recorded ``path`` (a lineage file of a status event, an Oslo
        ``s3_path``), scored by the time it was recorded: the status-from-path lookup."""
        return f"{self.prefix}:idx:path:{path}"

    def state_index(self, state: str) -> str:
        """Run ids in a state, scored by the time they entered it."""
        return f"{self.prefix}:idx:state:{state}"

    def flow_index(self, flow: str) -> str:
        """Run ids of a flow (or single-block runs of a block), scored by creation time."""
        return f"{self.prefix}:idx:flow:{flow}"

    @property
    def specs(self) -> str:
        """Current definitions: '<kind>:<name>' -> spec JSON."""
        return f"{self.prefix}:specs"

    @property
    def spec_versions(self) -> str:
        """Every definition ever registered: '<kind>:<name>:<version>' -> spec JSON."""
        return f"{self.prefix}:specs:versions"

    @property
    def meta(self) -> str:
        """Registry metadata (default flow, default block)."""
        return f"{self.prefix}:meta"

    @property
    def models(self) -> str:
        """Current status models: name -> model JSON."""
        return f"{self.prefix}:models"

    @property
    def model_versions(self) -> str:
        """Every status model ever published: '<name>:<version>' -> model JSON."""
        return f"{self.prefix}:models:versions"

    @property
    def global_statuses(self) -> str:
        """Statusek's global events (``status/setGlobalStatus``), oldest first."""
        return f"{self.prefix}:statusek:global"

    @property
    def finished_channel(self) -> str:
        """Pub/sub channel on which finished run ids are announced."""
        return f"{self.prefix}:finished"
