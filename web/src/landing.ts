const status = document.getElementById("status")!;
fetch("/api/diagnostics")
  .then(async (res) => {
    const body = await res.json();
    status.textContent = res.ok ? `Service up · store: ${body.store.kind} · v${body.version}` : `Service unavailable: ${body.detail}`;
  })
  .catch(() => (status.textContent = "The service cannot be reached."));
