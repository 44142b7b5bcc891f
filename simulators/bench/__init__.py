"""`sgs bench`, in reading order: `cli` (the flags and the method), `run` (one run: the processes, the feed, the
faults), `raw` (the pass-through yardstick), `accounting` (what each sink must hold, and the count that proves
nothing was lost or doubled), `report` (what it prints and draws)."""
