// The stepping page's script (autograd_lite/viz/page.py writes the data it reads).
// No library and no network: it shows one step at a time, highlights the boxes that step
// touches in the inline SVG, and shows any box's full arrays when it is clicked or hovered.
function autogradLitePage(root) {
  "use strict";
  var data = JSON.parse(root.querySelector(".ag-data").textContent);
  var steps = data.steps;
  var views = {};
  root.querySelectorAll(".ag-view").forEach(function (div) { views[div.dataset.view] = div; });
  var slider = root.querySelector(".ag-slider");
  var prev = root.querySelector(".ag-prev");
  var next = root.querySelector(".ag-next");
  var counter = root.querySelector(".ag-counter");
  var panel = root.querySelector(".ag-step");
  var details = root.querySelector(".ag-details");
  var toggle = root.querySelector(".ag-compare");
  var graph = root.querySelector(".ag-graph");
  var index = 0;
  var selected = null;
  slider.max = String(steps.length - 1);

  function compareOn() { return !!(toggle && toggle.checked); }

  // the view a step is drawn in: its own, or its comparison-coloured twin when the toggle is on
  function viewOf(step) {
    var coloured = step.view + "-compare";
    return compareOn() && views[coloured] ? coloured : step.view;
  }

  function element(view, key) {
    return views[view].querySelector('[id="' + data.prefix + "-" + view + "-" + key + '"]');
  }

  function keyOf(view, el) {
    return el.id.slice((data.prefix + "-" + view + "-").length);
  }

  // --- numbers and arrays ------------------------------------------------------------------
  function formatNumber(value) {
    var x = Number(value);
    if (Number.isNaN(x)) return "NaN";
    if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return "0";
    var text = x.toPrecision(6);
    var parts = text.split("e");
    if (parts[0].indexOf(".") >= 0) parts[0] = parts[0].replace(/0+$/, "").replace(/\.$/, "");
    return parts.join("e");
  }

  function arrayBlock(label, array, isResult) {
    var block = document.createElement("div");
    block.className = "ag-array" + (isResult ? " ag-result" : "");
    block.dataset.label = label;
    var head = document.createElement("div");
    head.className = "ag-array-label";
    head.textContent = label + " ";
    var shape = document.createElement("span");
    shape.className = "ag-shape";
    shape.textContent = array ? "(" + (array.shape.length ? array.shape.join("×") : "scalar") + ")" : "";
    head.appendChild(shape);
    block.appendChild(head);
    if (!array) {
      block.appendChild(note("no gradient: it needs none, or it was not reached"));
      return block;
    }
    if (array.omitted) {
      block.appendChild(note(array.omitted));
      return block;
    }
    var shapeList = array.shape;
    var columns = shapeList.length ? shapeList[shapeList.length - 1] : 1;
    var rows = columns ? array.data.length / columns : 0;
    if (shapeList.length > 2) {
      block.appendChild(note("shown as " + rows + " rows of the last axis (row-major order)"));
    }
    var scroll = document.createElement("div");
    scroll.className = "ag-array-scroll";
    var table = document.createElement("table");
    for (var r = 0; r < rows; r++) {
      var tr = document.createElement("tr");
      for (var c = 0; c < columns; c++) {
        var td = document.createElement("td");
        td.className = "ag-num";
        td.textContent = formatNumber(array.data[r * columns + c]);
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
    scroll.appendChild(table);
    block.appendChild(scroll);
    return block;
  }

  function note(text) {
    var p = document.createElement("div");
    p.className = "ag-note";
    p.textContent = text;
    return p;
  }

  function div(className, text) {
    var d = document.createElement("div");
    d.className = className;
    d.textContent = text;
    return d;
  }

  function arrayOf(item) {
    if (item.array) return item.array;
    var tensor = data.tensors[item.tensor];
    return item.which === "grad" ? tensor.grad : tensor.value;
  }

  // --- stepping ------------------------------------------------------------------------------
  function clearMarks() {
    root.querySelectorAll(".ag-active, .ag-current, .ag-active-edge, .ag-pending").forEach(function (el) {
      el.classList.remove("ag-active", "ag-current", "ag-active-edge", "ag-pending");
    });
  }

  function show(i) {
    index = Math.max(0, Math.min(steps.length - 1, i));
    var step = steps[index];
    var view = viewOf(step);
    Object.keys(views).forEach(function (name) { views[name].hidden = name !== view; });
    clearMarks();
    // what this phase has reached so far: every box touched by the steps of the same view up
    // to this one; the rest is faded
    var reached = {};
    for (var j = 0; j <= index; j++) {
      if (steps[j].view !== step.view) continue;
      steps[j].highlight.forEach(function (key) { reached[key] = true; });
      (steps[j].edges || []).forEach(function (key) { reached[key] = true; });
    }
    views[view].querySelectorAll("g.node, g.edge").forEach(function (el) {
      if (!el.id || !reached[keyOf(view, el)]) el.classList.add("ag-pending");
    });
    step.highlight.forEach(function (key) {
      var el = element(view, key);
      if (el) el.classList.add("ag-active");
    });
    (step.edges || []).forEach(function (key) {
      var el = element(view, key);
      if (el) el.classList.add("ag-active-edge");
    });
    var current = step.current ? element(view, step.current) : null;
    if (current) {
      current.classList.add("ag-current");
      scrollTo(current);
    }
    panel.textContent = "";
    panel.appendChild(div("ag-step-title", step.title));
    panel.appendChild(div("ag-rule", step.rule || ""));
    if (step.text) panel.appendChild(div("ag-text", step.text));
    if (step.compare && compareOn()) {
      panel.appendChild(div("ag-compare-line " + (step.compareState || ""), "hand derivation: " + step.compare));
    }
    step.arrays.forEach(function (item) {
      panel.appendChild(arrayBlock(item.label, arrayOf(item), !!item.result));
    });
    counter.textContent = "step " + (index + 1) + " of " + steps.length;
    slider.value = String(index);
    prev.disabled = index === 0;
    next.disabled = index === steps.length - 1;
    root.dataset.step = String(index);
    root.dataset.current = step.current || "";
    root.dataset.view = view;
  }

  function scrollTo(el) {
    var box = el.getBoundingClientRect();
    var frame = graph.getBoundingClientRect();
    if (box.top < frame.top || box.bottom > frame.bottom) {
      graph.scrollTop += box.top - frame.top - frame.height / 2 + box.height / 2;
    }
    if (box.left < frame.left || box.right > frame.right) {
      graph.scrollLeft += box.left - frame.left - frame.width / 2 + box.width / 2;
    }
  }

  // --- any box: its full arrays --------------------------------------------------------------
  function describe(view, key) {
    var node = data.nodes[view] && data.nodes[view][key];
    if (!node) return;
    details.textContent = "";
    details.dataset.key = key;
    if (node.tensor === undefined || node.kind !== "tensor") {
      details.appendChild(div("ag-step-title", node.title));
      node.lines.forEach(function (line) { details.appendChild(div("ag-note", line)); });
      if (node.tensor !== undefined) {
        var made = data.tensors[node.tensor];
        details.appendChild(div("ag-text", "makes " + made.name + " (" + made.shape + ")"));
      }
      return;
    }
    var tensor = data.tensors[node.tensor];
    details.appendChild(div("ag-step-title", tensor.name + "  ·  " + tensor.shape));
    details.appendChild(div("ag-note", tensor.kind + (tensor.definition ? ": " + tensor.name + " = " + tensor.definition : "")));
    if (node.compare) {
      details.appendChild(div("ag-compare-line " + node.compare.state, "hand derivation: " + node.compare.summary));
    }
    details.appendChild(arrayBlock(tensor.name + " (value)", tensor.value, false));
    if (tensor.requiresGrad) details.appendChild(arrayBlock(tensor.gradName + " (gradient)", tensor.grad, false));
  }

  function nodeAt(target) {
    var g = target.closest ? target.closest("g.node") : null;
    if (!g || !g.id) return null;
    var viewDiv = g.closest(".ag-view");
    return viewDiv ? { el: g, view: viewDiv.dataset.view, key: keyOf(viewDiv.dataset.view, g) } : null;
  }

  // a click pins a box's details (hovering then changes nothing); a click on the same box, or
  // on the empty page, unpins
  graph.addEventListener("click", function (event) {
    var hit = nodeAt(event.target);
    var again = hit && selected === hit.el;
    if (selected) selected.classList.remove("ag-selected");
    selected = null;
    if (!hit || again) return;
    selected = hit.el;
    selected.classList.add("ag-selected");
    describe(hit.view, hit.key);
  });
  graph.addEventListener("mouseover", function (event) {
    var hit = nodeAt(event.target);
    if (hit && !selected) describe(hit.view, hit.key);
  });

  prev.addEventListener("click", function () { show(index - 1); });
  next.addEventListener("click", function () { show(index + 1); });
  slider.addEventListener("input", function () { show(Number(slider.value)); });
  if (toggle) toggle.addEventListener("change", function () { show(index); });

  function onKey(event) {
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    var moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1,
                  ArrowUp: index - 1, Home: 0, End: steps.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    show(moves[event.key]);
  }
  // a page of its own listens everywhere; inside a notebook only when it has the focus, so
  // the notebook's own arrow keys keep working
  if (document.body.classList.contains("ag-standalone")) {
    document.addEventListener("keydown", onKey);
  } else {
    root.addEventListener("keydown", onKey);
  }
  show(0);
}
