// Entry point: wires the snapshot store, the SSE connection and the views.

import 'uplot/dist/uPlot.min.css';
import './styles.css';

import { adoptTokenFromUrl } from './api.js';
import { connect } from './connection.js';
import { createStore } from './store.js';
import { AdminPanel } from './views/adminPanel.js';
import { ErrorsCard } from './views/errorsCard.js';
import { HeaderView } from './views/header.js';
import { KernelControls } from './views/kernelControls.js';
import { KernelDetail } from './views/kernelDetail.js';
import { LoadControls } from './views/loadControls.js';
import { StatusLine } from './views/statusLine.js';
import { ThroughputCard } from './views/throughputCard.js';
import { WorkersCard } from './views/workersCard.js';
import { byId } from './dom.js';

function start() {
  adoptTokenFromUrl();

  const store = createStore();
  window.tandemDashboard = {
    get snapshots() { return store.snapshots; },
    get latest() { return store.latest; },
  };

  let admin = null;
  const status = new StatusLine(byId('status-line'), () => admin.askForToken());
  admin = new AdminPanel(status);
  const header = new HeaderView();
  const throughput = new ThroughputCard();
  const errors = new ErrorsCard();
  const detail = new KernelDetail(() => renderAll());
  const workers = new WorkersCard(status);
  const kernelControls = new KernelControls(status);
  const load = new LoadControls(status);

  function renderAll() {
    const latest = store.latest;
    if (!latest) return;
    header.render(latest, store.received);
    throughput.render(store.snapshots, latest);
    errors.render(store.snapshots, latest);
    detail.render(store.snapshots, latest);
    workers.render(store.snapshots, latest);
    kernelControls.render(latest);
    load.render(latest);
    admin.render(latest);
  }

  // Snapshots arrive about once a second, so every one is drawn as it comes.
  store.subscribe(renderAll);

  connect({
    onSnapshot: (snapshot) => store.ingest(snapshot),
    onState: (state) => header.setConnection(state),
  });
}

start();
