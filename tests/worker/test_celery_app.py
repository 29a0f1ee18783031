"""The Celery app factory and the embedded file broker."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from kombu import Connection

from core.broker import broker_connection
from core.dispatch import INGEST_TASK, ORACLE_TASK, RUN_ROUND_TASK, SCORE_TASK
from core.settings import Settings
from worker.celery_app import create_celery_app


def test_importing_the_worker_creates_nothing(tmp_path: Path) -> None:
    program = (
        "import worker.celery_app, worker.tasks.rounds, worker.watchdog\n"
        "from kombu.transport import TRANSPORT_ALIASES\n"
        "print('tessera-files' in TRANSPORT_ALIASES)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_app_acknowledges_late_and_registers_every_job_task(tmp_path: Path) -> None:
    app = create_celery_app(Settings(data_dir=tmp_path, task_queue="q", ingest_queue="cpu"))
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert not app.conf.worker_enable_remote_control  # the file broker has no broadcast
    assert {RUN_ROUND_TASK, SCORE_TASK, INGEST_TASK, ORACLE_TASK} <= set(app.tasks)
    assert app.conf.task_routes[INGEST_TASK] == {"queue": "cpu"}
    assert (tmp_path / "broker" / "messages").is_dir()
    redis_app = create_celery_app(Settings(data_dir=tmp_path, broker_url="redis://x:6379/3"))
    assert redis_app.conf.worker_enable_remote_control
    assert redis_app.conf.broker_transport_options["visibility_timeout"] >= 3600


def test_embedded_broker_hands_each_message_to_one_consumer(tmp_path: Path) -> None:
    connection = broker_connection(Settings(data_dir=tmp_path))
    sent = list(range(60))
    with Connection(connection.url, transport_options=connection.transport_options) as producer:
        queue = producer.SimpleQueue("jobs")
        for number in sent:
            queue.put({"job": number})
        queue.close()
    received: list[int] = []
    lock = threading.Lock()

    def consume() -> None:
        with Connection(connection.url, transport_options=connection.transport_options) as conn:
            queue = conn.SimpleQueue("jobs")
            while True:
                try:
                    message = queue.get(timeout=0.5)
                except queue.Empty:
                    break
                message.ack()
                with lock:
                    received.append(message.payload["job"])
            queue.close()

    consumers = [threading.Thread(target=consume) for _ in range(3)]
    for consumer in consumers:
        consumer.start()
    for consumer in consumers:
        consumer.join()
    assert sorted(received) == sent
