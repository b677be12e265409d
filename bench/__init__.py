"""The benchmark of issue 4: tracking-consumer against a naive loop, a Quix Streams app and the
bare-httpx ceiling, on the local broker and the Redo sandbox. See bench/README.md."""
