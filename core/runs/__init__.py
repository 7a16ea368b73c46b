"""Runs: the run store, the queue that starts workers, the training worker itself, and the live view.

Modules: `store` (SQLite: runs, epochs, log, progress), `runner` (queue, detached workers, stop, resume,
liveness), `lease` (one worker per run: leases, heartbeats, fencing stale workers), `artifacts` (the
names of a run's files), `worker` (one run's training, started as `python -m core worker RUN_ID`),
`phases` (the worker's Job: its recipe's phases, checkpoints, final models), `job_data` (the Job's recorded
split, decoded images, batches and frozen passes), `callbacks` (Keras callbacks the worker uses: recording,
stopping, progress), `monitor` (a run's live snapshot).
Importing this package imports neither TensorFlow nor Streamlit.
"""
