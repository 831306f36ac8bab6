// A plotly chart whose whole figure is widget state: a reloaded page draws what the kernel holds.
// plotly.js travels once per page: the first chart asks the kernel for it (one binary message)
// instead of every chart carrying a 5 MB bundle of its own.

let plotlyPromise = null;

function loadPlotly(model) {
  if (globalThis.Plotly) return Promise.resolve(globalThis.Plotly);
  if (plotlyPromise) return plotlyPromise;
  plotlyPromise = new Promise((resolve, reject) => {
    const onMsg = (msg, buffers) => {
      if (!msg || msg.type !== "plotly-js") return;
      model.off("msg:custom", onMsg);
      const blob = new Blob([buffers[0]], { type: "text/javascript" });
      const script = document.createElement("script");
      script.src = URL.createObjectURL(blob);
      script.onload = () => resolve(globalThis.Plotly);
      script.onerror = (err) => {
        plotlyPromise = null;
        reject(err);
      };
      document.head.appendChild(script);
    };
    model.on("msg:custom", onMsg);
    model.send({ type: "need-plotly" });
  });
  return plotlyPromise;
}

// Arrays come as binary buffers ({__nd__, dtype, shape, buffer}): NaN survives, JSON stays small.
function decode(v) {
  if (Array.isArray(v)) return v.map(decode);
  if (v && typeof v === "object" && !(v instanceof DataView)) {
    if (v.__nd__) {
      const dv = v.buffer;
      const raw = dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength);
      const arr = v.dtype === "float32" ? new Float32Array(raw) : new Float64Array(raw);
      if (v.shape.length < 2) return Array.from(arr);
      const [n, m] = v.shape;
      const rows = new Array(n);
      for (let i = 0; i < n; i++) rows[i] = Array.from(arr.subarray(i * m, (i + 1) * m));
      return rows;
    }
    const out = {};
    for (const k of Object.keys(v)) out[k] = decode(v[k]);
    return out;
  }
  return v;
}

async function render({ model, el }) {
  const div = document.createElement("div");
  div.className = "aenp-plot";
  div.textContent = "loading chart ...";
  el.appendChild(div);
  let Plotly;
  try {
    Plotly = await loadPlotly(model);
  } catch (err) {
    div.textContent = `could not load plotly.js: ${err}`;
    return;
  }
  div.textContent = "";
  let busy = Promise.resolve();
  const draw = () => {
    const fig = decode(model.get("figure"));
    // One redraw at a time, in order: the newest state always lands last.
    busy = busy.then(() =>
      Plotly.react(div, fig.data || [], fig.layout || {}, { displaylogo: false, responsive: true })
    );
    return busy;
  };
  await draw();
  model.on("change:figure", draw);
  // A click reports where it landed in data coordinates (not only the point plotly hovers).
  div.on("plotly_click", (ev) => {
    const e = ev.event;
    const pt = ev.points && ev.points[0];
    const fl = div._fullLayout;
    const xa = pt ? pt.xaxis : fl.xaxis;
    const ya = pt ? pt.yaxis : fl.yaxis;
    const bb = div.getBoundingClientRect();
    const x = xa.p2c(e.clientX - bb.left - xa._offset);
    const y = ya.p2c(e.clientY - bb.top - ya._offset);
    model.send({
      type: "click",
      x,
      y,
      trace: pt ? pt.curveNumber : null,
      point_x: pt ? +pt.x : null,
      point_y: pt ? +pt.y : null,
    });
  });
  return () => {
    model.off("change:figure", draw);
    Plotly.purge(div);
  };
}

export default { render };
