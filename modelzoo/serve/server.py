"""Running the app under uvicorn, with a bounded drain on SIGTERM."""
import uvicorn


class DrainingServer(uvicorn.Server):
    """On SIGTERM or SIGINT the service is marked as draining (readiness answers 503, new enhance requests on
    open connections are refused) while uvicorn stops listening and lets requests in flight finish within
    `timeout_graceful_shutdown` seconds."""

    def __init__(self, config, service):
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig, frame):
        self.service.draining = True
        super().handle_exit(sig, frame)


def run(app, host, port, drain):
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=drain, log_level="info",
                            access_log=False, server_header=False)
    DrainingServer(config, app.state.service).run()
    app.state.service.close()
