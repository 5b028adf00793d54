// The stepping page's script (autograd_lite/viz/page.py writes the data it reads).
// No library and no network: it shows one step at a time, highlights the boxes that step
// touches in the inline SVG, and pins any clicked box's full arrays at the top of the panel.
// Every array shown also sits in its block's data-array attribute as full-precision JSON, so
// a test (or a curious student) can multiply a step's factors out exactly.
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
  var hint = root.querySelector(".ag-hint");
  var toggle = root.querySelector(".ag-compare");
  var graph = root.querySelector(".ag-graph");
  var index = 0;
  var selected = null;        // the pinned box: {el, view, key}
  var keyboard = false;       // stepping with the keys: the pointer's box must not take over
  var pointer = null;         // where the mouse last was, to tell a real move from a scroll
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

  function div(className, text) {
    var d = document.createElement("div");
    d.className = className;
    d.textContent = text;
    return d;
  }

  function note(text) { return div("ag-note", text); }

  // one array as a table; `columns` set: only those columns (a wide array wraps in chunks)
  function table(array, from, to) {
    var shapeList = array.shape;
    var columns = shapeList.length ? shapeList[shapeList.length - 1] : 1;
    var rows = columns ? array.data.length / columns : 0;
    var t = document.createElement("table");
    if (from > 0 || to < columns) {
      var caption = document.createElement("caption");
      caption.textContent = (to - from === 1 ? "column " + to : "columns " + (from + 1) + "–" + to) +
                            " of " + columns;
      t.appendChild(caption);
    }
    for (var r = 0; r < rows; r++) {
      var tr = document.createElement("tr");
      for (var c = from; c < to; c++) {
        var td = document.createElement("td");
        td.className = "ag-num";
        td.textContent = formatNumber(array.data[r * columns + c]);
        tr.appendChild(td);
      }
      t.appendChild(tr);
    }
    return t;
  }

  function arrayBlock(label, array, role, extra) {
    var block = document.createElement("div");
    block.className = "ag-array" + (/\bresult\b/.test(role || "") ? " ag-result" : "");
    block.dataset.label = label;
    if (role) block.dataset.role = role;
    Object.keys(extra || {}).forEach(function (key) { block.dataset[key] = extra[key]; });
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
    block.dataset.array = JSON.stringify({ shape: array.shape, data: array.data });
    var shapeList = array.shape;
    var columns = shapeList.length ? shapeList[shapeList.length - 1] : 1;
    if (shapeList.length > 2) {
      block.appendChild(note("shown as " + (array.data.length / (columns || 1)) +
                             " rows of the last axis (row-major order)"));
    }
    var scroll = document.createElement("div");
    scroll.className = "ag-array-scroll";
    scroll.appendChild(table(array, 0, columns));
    block.appendChild(scroll);
    block._array = array;
    return block;
  }

  // arrays fit the panel: a smaller font first, then the columns wrap in chunks
  function fit(container) {
    container.querySelectorAll(".ag-array-scroll").forEach(function (scroll) {
      var array = scroll.parentNode._array;
      if (!array || !scroll.clientWidth) return;
      var sizes = [12, 11, 10];
      for (var i = 0; i < sizes.length; i++) {
        scroll.style.fontSize = sizes[i] + "px";
        if (scroll.scrollWidth <= scroll.clientWidth) return;
      }
      var columns = array.shape.length ? array.shape[array.shape.length - 1] : 1;
      for (var parts = 2; parts <= columns; parts++) {
        var chunk = Math.ceil(columns / parts);  // balanced: 5 columns as 3 + 2, not 4 + 1
        scroll.textContent = "";
        for (var from = 0; from < columns; from += chunk) {
          scroll.appendChild(table(array, from, Math.min(columns, from + chunk)));
        }
        if (scroll.scrollWidth <= scroll.clientWidth) return;
      }
    });
  }

  function arrayOf(item) {
    if (item.array) return item.array;
    var tensor = data.tensors[item.tensor];
    return item.which === "grad" ? tensor.grad : tensor.value;
  }

  function sideBySide(left, right) {
    var row = div("ag-beside", "");
    row.appendChild(left);
    row.appendChild(right);
    return row;
  }

  // --- stepping ------------------------------------------------------------------------------
  function clearMarks() {
    root.querySelectorAll(".ag-active, .ag-current, .ag-active-edge, .ag-pending").forEach(function (el) {
      el.classList.remove("ag-active", "ag-current", "ag-active-edge", "ag-pending");
    });
  }

  function equationLine(step) {
    var equation = step.equation;
    if (!equation) return null;
    var line;
    if (equation.number !== undefined) {
      line = div("ag-equation", "eq " + equation.number + " (" + equation.where + ", layer " +
                 equation.layer + "): " + equation.rule);
      line.dataset.equation = String(equation.number);
    } else if (equation.text) {
      line = div("ag-equation ag-equation-other", equation.text);
      line.dataset.equation = "";
    } else {
      return null;
    }
    return line;
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
    scale(views[view]);
    var current = step.current ? element(view, step.current) : null;
    if (current) {
      current.classList.add("ag-current");
      scrollTo(current);
    }
    panel.textContent = "";
    panel.dataset.quantity = step.quantity || "";
    panel.dataset.equation = step.equation && step.equation.number !== undefined ? String(step.equation.number) : "";
    panel.appendChild(div("ag-step-title", step.title));
    var equation = equationLine(step);
    if (equation) panel.appendChild(equation);
    panel.appendChild(div("ag-rule", step.rule || ""));
    if (step.text) panel.appendChild(div("ag-text", step.text));
    if (step.compare && compareOn()) {
      panel.appendChild(div("ag-compare-line " + (step.compareState || ""), "hand derivation: " + step.compare));
      if (step.wrongRule) panel.appendChild(div("ag-compare-line differ", "the wrong rule: " + step.wrongRule));
      if (step.explanation) panel.appendChild(div("ag-compare-line differ", "report: " + step.explanation));
      if (step.handBeside) {
        panel.appendChild(sideBySide(
          arrayBlock("hand " + step.handBeside.label, step.handBeside.hand, "hand"),
          arrayBlock("autodiff " + step.handBeside.label, step.handBeside.autodiff, "autodiff")));
      }
    }
    step.arrays.forEach(function (item) {
      var extra = {};
      if (item.form) extra.form = item.form;
      if (item.axes) extra.axes = JSON.stringify(item.axes);
      panel.appendChild(arrayBlock(item.label, arrayOf(item), item.role || (item.result ? "result" : ""), extra));
    });
    if (step.simplified) {
      panel.appendChild(div("ag-text ag-simplified", step.simplified.text));
      var result = step.arrays[step.arrays.length - 1];
      panel.appendChild(sideBySide(
        arrayBlock(step.simplified.label + " (the seed)", step.simplified.array, "simplified"),
        arrayBlock(step.quantity + " (autodiff)", arrayOf(result), "autodiff")));
    }
    fit(panel);
    counter.textContent = "step " + (index + 1) + " of " + steps.length;
    slider.value = String(index);
    prev.disabled = index === 0;
    next.disabled = index === steps.length - 1;
    root.dataset.step = String(index);
    root.dataset.current = step.current || "";
    root.dataset.view = view;
    if (selected) describe(selected.view, selected.key, true);  // its gradient may now exist
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

  // the picture scales to its pane: all of it when its text stays readable that way (0.85
  // times or more, growing up to 1.6 times to fill the pane); else it fills the pane's width
  // (at least 0.5 times: a wider one scrolls sideways) and scrolls down, stepping keeping the
  // current box in view
  function scale(viewDiv) {
    var svg = viewDiv.querySelector("svg");
    if (!svg || !graph.clientWidth) return;
    if (!svg.dataset.width) {
      svg.dataset.width = String(parseFloat(svg.getAttribute("width")) || svg.getBBox().width);
      svg.dataset.height = String(parseFloat(svg.getAttribute("height")) || svg.getBBox().height);
    }
    var width = Number(svg.dataset.width) * 4 / 3, height = Number(svg.dataset.height) * 4 / 3;  // pt -> px
    var paneWidth = graph.clientWidth - 16, paneHeight = graph.clientHeight - 16;
    var whole = Math.min(paneWidth / width, paneHeight / height);
    var factor = whole >= 0.85 ? Math.min(whole, 1.6) : Math.max(Math.min(paneWidth / width, 1.6), 0.5);
    svg.setAttribute("width", String(Math.floor(width * factor)) + "px");
    svg.setAttribute("height", String(Math.floor(height * factor)) + "px");
  }

  // --- any box: its full arrays, pinned at the top of the panel ----------------------------
  function describe(view, key, pinned) {
    var node = data.nodes[view] && data.nodes[view][key];
    if (!node) return;
    details.textContent = "";
    details.hidden = false;
    hint.hidden = true;
    details.dataset.key = key;
    details.classList.toggle("ag-pinned", !!pinned);
    var head = div("ag-details-head", "");
    if (pinned) {
      var close = document.createElement("button");
      close.type = "button";
      close.className = "ag-close";
      close.title = "close (Esc)";
      close.textContent = "×";
      close.addEventListener("click", unpin);
      head.appendChild(close);
    }
    details.appendChild(head);
    if (node.tensor === undefined || node.kind !== "tensor") {
      head.appendChild(div("ag-step-title", node.title));
      node.lines.forEach(function (line) { details.appendChild(note(line)); });
      if (node.tensor !== undefined) {
        var made = data.tensors[node.tensor];
        details.appendChild(div("ag-text", "makes " + made.name + " (" + made.shape + ")"));
      }
      return;
    }
    var tensor = data.tensors[node.tensor];
    head.appendChild(div("ag-step-title", tensor.name + "  ·  " + tensor.shape));
    var definition = tensor.definition && tensor.definition !== tensor.name ? ": " + tensor.name + " = " + tensor.definition : "";
    details.appendChild(note(tensor.kind + definition));
    if (node.compare) {
      details.appendChild(div("ag-compare-line " + node.compare.state, "hand derivation: " + node.compare.summary));
    }
    details.appendChild(arrayBlock(tensor.name + " (value)", tensor.value, "value"));
    if (tensor.requiresGrad) {
      if (tensor.grad && tensor.gradStep !== undefined && index < tensor.gradStep) {
        details.appendChild(note(tensor.gradName + ": not computed yet (backward reaches it at step " +
                                 (tensor.gradStep + 1) + ")"));
      } else {
        details.appendChild(arrayBlock(tensor.gradName + " (gradient)", tensor.grad, "gradient"));
      }
    }
    fit(details);
  }

  function clearDetails() {
    details.textContent = "";
    details.hidden = true;
    hint.hidden = false;
    delete details.dataset.key;
  }

  function unpin() {
    if (selected) selected.el.classList.remove("ag-selected");
    selected = null;
    clearDetails();
  }

  function nodeAt(target) {
    var g = target.closest ? target.closest("g.node") : null;
    if (!g || !g.id) return null;
    var viewDiv = g.closest(".ag-view");
    return viewDiv ? { el: g, view: viewDiv.dataset.view, key: keyOf(viewDiv.dataset.view, g) } : null;
  }

  // a click pins a box's details at the top of the panel until closed (×, Esc, or a click on
  // the same box); hovering previews a box only while nothing is pinned
  graph.addEventListener("click", function (event) {
    var hit = nodeAt(event.target);
    if (!hit) return;
    var again = selected && selected.el === hit.el;
    unpin();
    if (again) return;
    selected = hit;
    hit.el.classList.add("ag-selected");
    describe(hit.view, hit.key, true);
    details.parentNode.scrollTop = 0;
  });
  graph.addEventListener("mousemove", function (event) {
    var moved = !pointer || pointer[0] !== event.clientX || pointer[1] !== event.clientY;
    pointer = [event.clientX, event.clientY];
    if (moved) keyboard = false;  // the mouse really moved: hovering previews again
  });
  graph.addEventListener("mouseover", function (event) {
    var hit = nodeAt(event.target);
    if (hit && !selected && !keyboard) describe(hit.view, hit.key, false);
  });
  graph.addEventListener("mouseleave", function () { if (!selected) clearDetails(); });

  prev.addEventListener("click", function () { show(index - 1); });
  next.addEventListener("click", function () { show(index + 1); });
  slider.addEventListener("input", function () { show(Number(slider.value)); });
  if (toggle) toggle.addEventListener("change", function () { show(index); });

  function onKey(event) {
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    if (event.key === "Escape") { unpin(); return; }
    var moves = { ArrowRight: index + 1, ArrowDown: index + 1, ArrowLeft: index - 1,
                  ArrowUp: index - 1, Home: 0, End: steps.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    keyboard = true;
    if (!selected) clearDetails();
    show(moves[event.key]);
  }
  // a page of its own listens everywhere; inside a notebook only when it has the focus, so
  // the notebook's own arrow keys keep working
  if (document.body.classList.contains("ag-standalone")) {
    document.addEventListener("keydown", onKey);
  } else {
    root.addEventListener("keydown", onKey);
  }
  window.addEventListener("resize", function () { show(index); });
  show(0);
}
