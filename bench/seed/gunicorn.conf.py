# gunicorn settings for bench/run: only a line when a worker is ready to
# serve, so that bench/run starts measuring once every worker has loaded the
# app (booting five workers takes seconds on a busy machine). How the seed
# serves is unchanged: sync workers, as many as bench/run asks for.
import sys


def post_worker_init(worker):
    print(f"bench-seed: worker {worker.pid} ready", file=sys.stderr, flush=True)
