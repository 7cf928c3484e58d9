/* mockinterview: progressive enhancement for the server-rendered pages.
 *
 * Every page works without this file (plain forms, full-page posts and redirects). With it:
 * the start form shows only the chosen track's topics; the interview posts with fetch (no
 * reload), shows a "grading..." state while the answer box stays free for typing, keeps a
 * draft of the answer across reloads, counts characters and times each question; the report
 * gets a copy button for its share link. User text is only ever inserted as textContent;
 * HTML comes from the server's (escaping) templates.
 */
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function fmtTime(total) {
    var m = Math.floor(total / 60);
    var s = total % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function randomKey() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(36).slice(2);
  }

  function storage() {
    try {
      var probe = "__mi_probe__";
      window.localStorage.setItem(probe, probe);
      window.localStorage.removeItem(probe);
      return window.localStorage;
    } catch (e) {
      return null;
    }
  }

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  // ---------------------------------------------------------------------------- start page
  function initStart() {
    var form = document.getElementById("start-form");
    if (!form) return;
    var track = form.querySelector("#track");
    if (!track) return;
    function update() {
      var groups = form.querySelectorAll(".topic-group");
      for (var i = 0; i < groups.length; i++) {
        var on = groups[i].getAttribute("data-track") === track.value;
        groups[i].hidden = !on;
        var inputs = groups[i].querySelectorAll("input");
        for (var j = 0; j < inputs.length; j++) inputs[j].disabled = !on;
      }
    }
    track.addEventListener("change", update);
    update();
  }

  // ------------------------------------------------------------------------ interview page
  function initInterview() {
    var root = document.getElementById("interview");
    if (!root) return;
    var sessionId = root.getAttribute("data-session-id");
    var maxChars = parseInt(root.getAttribute("data-max-chars"), 10) || 8000;
    var panel = document.getElementById("question-panel");
    var transcript = document.getElementById("transcript");
    var live = document.getElementById("live");
    var alertBox = document.getElementById("alert-live");
    var form = document.getElementById("answer-form");
    var store = storage();
    var timerHandle = null;

    function say(text, busy) {
      live.textContent = text || "";
      live.classList.toggle("busy", !!busy);
    }

    function showError(text) {
      alertBox.textContent = text;
      alertBox.classList.remove("hidden");
    }

    function clearError() {
      alertBox.textContent = "";
      alertBox.classList.add("hidden");
      var old = document.getElementById("error-box");
      if (old) old.parentNode.removeChild(old);
    }

    function startTimer() {
      if (timerHandle) window.clearInterval(timerHandle);
      timerHandle = null;
      var q = panel.querySelector(".current-q");
      if (!q) return;
      var el = q.querySelector("#timer");
      var started = Date.now() - (parseInt(q.getAttribute("data-elapsed"), 10) || 0) * 1000;
      function tick() {
        el.textContent = fmtTime(Math.max(0, Math.floor((Date.now() - started) / 1000)));
      }
      tick();
      timerHandle = window.setInterval(tick, 1000);
    }

    startTimer();

    if (document.getElementById("stalled")) {
      // The last answer is still being graded: look again shortly (a plain GET), for a
      // minute or so; after that the page offers to grade it again.
      var tries = 0;
      try {
        tries = parseInt(window.sessionStorage.getItem("mi-stalled:" + sessionId) || "0", 10);
        window.sessionStorage.setItem("mi-stalled:" + sessionId, String(tries + 1));
      } catch (e) {
        tries = 0;
      }
      if (tries < 20) {
        window.setTimeout(function () {
          window.location.reload();
        }, 3000);
      }
    } else {
      try {
        window.sessionStorage.removeItem("mi-stalled:" + sessionId);
      } catch (e) {
        /* storage off: nothing to clear */
      }
    }
    // A verdict of the LLM judge that came after the deadline replaces the provisional
    // feedback: look for it every few seconds for two minutes, while one is pending.
    var judgeTries = 0;
    var judgeWaiting = false;
    function watchJudge() {
      if (judgeWaiting || !window.fetch || !transcript.querySelector("[data-judge-pending]") || judgeTries >= 40) return;
      judgeTries += 1;
      judgeWaiting = true;
      window.setTimeout(function () {
        judgeWaiting = false;
        window
          .fetch("/sessions/" + sessionId + "/transcript", { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (r) {
            return r.ok ? r.json() : null;
          })
          .then(function (data) {
            if (data && !data.judge_pending) {
              transcript.innerHTML = data.transcript_html;
              live.textContent = "The judge's verdict has arrived.";
            }
            watchJudge();
          })
          .catch(watchJudge);
      }, 3000);
    }
    watchJudge();

    if (!form || !window.fetch || !window.FormData) return;

    var textarea = form.querySelector("#answer");
    var counter = document.getElementById("answer-count");
    var turnInput = form.querySelector("#turn-id");
    var keyInput = form.querySelector("#idempotency-key");
    var hintBtn = form.querySelector("#hint-btn");
    var submitBtn = form.querySelector("#submit-btn");
    var buttons = form.querySelectorAll("button");
    var busy = false;
    var lastSent = null; // {text, key}: a retry of the same text reuses its key (a replay)
    var warned = 0;

    function draftKey() {
      return "mi-draft:" + sessionId + ":" + turnInput.value;
    }

    function saveDraft() {
      if (!store) return;
      if (textarea.value) store.setItem(draftKey(), textarea.value);
      else store.removeItem(draftKey());
    }

    function updateCount() {
      var n = textarea.value.length;
      counter.textContent = n + " / " + maxChars + " characters";
      counter.classList.toggle("near", n >= maxChars * 0.9 && n < maxChars);
      counter.classList.toggle("over", n >= maxChars);
      var level = n >= maxChars ? 2 : n >= maxChars * 0.9 ? 1 : 0;
      if (level > warned) {
        say(level === 2 ? "You have reached the " + maxChars + " character limit." : (maxChars - n) + " characters left.");
      }
      warned = level;
    }

    if (store && !textarea.value) {
      var saved = store.getItem(draftKey());
      if (saved) {
        textarea.value = saved;
        say("Your unsent draft was restored.");
      }
    }
    updateCount();
    textarea.addEventListener("input", function () {
      updateCount();
      saveDraft();
    });
    textarea.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
        ev.preventDefault();
        if (form.requestSubmit) form.requestSubmit(submitBtn);
        else submitBtn.click();
      }
    });

    function setButtons(enabled) {
      for (var i = 0; i < buttons.length; i++) buttons[i].disabled = !enabled;
      if (enabled) updateHintButton(null);
    }

    function updateHintButton(left) {
      if (left === null) {
        var q = panel.querySelector(".current-q");
        left = q ? parseInt(q.getAttribute("data-hints-left"), 10) || 0 : 0;
      }
      var q2 = panel.querySelector(".current-q");
      if (q2) q2.setAttribute("data-hints-left", String(left));
      hintBtn.disabled = left <= 0 || busy;
      hintBtn.textContent = left > 0 ? "Hint (" + left + " left)" : "Hint";
    }

    function currentQuestionText() {
      var el = panel.querySelector(".current-text");
      return el ? el.textContent : "";
    }

    function currentLabel() {
      var q = panel.querySelector(".current-q");
      return q ? q.getAttribute("data-label") : "";
    }

    function optimisticTurn(text, kind) {
      // Show the answer at once, as text, while the server grades it.
      var li = document.createElement("li");
      li.className = "turn optimistic";
      var q = document.createElement("article");
      q.className = "bubble interviewer";
      var who = document.createElement("h3");
      who.className = "who";
      who.textContent = currentLabel();
      var qt = document.createElement("p");
      qt.className = "question-text";
      qt.textContent = currentQuestionText();
      q.appendChild(who);
      q.appendChild(qt);
      var a = document.createElement("div");
      a.className = "bubble candidate";
      var aw = document.createElement("p");
      aw.className = "who";
      aw.textContent = "Your answer";
      var at = document.createElement("div");
      at.className = kind === "answer" ? "answer-text" : "muted";
      at.textContent = kind === "answer" ? text : kind === "idk" ? "I don't know." : "Skipped.";
      a.appendChild(aw);
      a.appendChild(at);
      var p = document.createElement("p");
      p.className = "pending";
      p.textContent = kind === "skip" ? "Moving on..." : "Grading...";
      li.appendChild(q);
      li.appendChild(a);
      li.appendChild(p);
      transcript.appendChild(li);
      return li;
    }

    function focusAfterUpdate(hadFocusInTextarea) {
      var active = document.activeElement;
      if (hadFocusInTextarea && !form.hidden) return; // keep typing where you are
      if (!active || active === document.body || active.disabled || !document.body.contains(active)) {
        var target = form.hidden ? document.getElementById("report-link") || document.getElementById("current-h") : textarea;
        if (target) target.focus();
      }
    }

    function applyState(data, answeredId) {
      transcript.innerHTML = data.transcript_html;
      judgeTries = 0;
      watchJudge();
      panel.innerHTML = data.question_html;
      var progress = document.getElementById("q-progress");
      var progressText = document.getElementById("q-progress-text");
      if (progress && typeof data.main_done === "number") {
        progress.value = data.main_done;
        progressText.textContent = data.main_done + " of " + data.total;
      }
      if (data.turn_id) {
        turnInput.value = data.turn_id;
        if (textarea.value) saveDraft(); // whatever was typed meanwhile belongs to the new question
      } else {
        form.hidden = true;
        if (timerHandle) window.clearInterval(timerHandle);
        var endEarly = document.querySelector(".end-early");
        if (endEarly) endEarly.hidden = true;
      }
      startTimer();
      if (answeredId) {
        var card = document.getElementById("turn-" + answeredId);
        if (card && card.scrollIntoView) card.scrollIntoView({ block: "start", behavior: reducedMotion() ? "auto" : "smooth" });
      }
    }

    function post(url, body) {
      return window.fetch(url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrfToken() },
      }).then(function (resp) {
        return resp
          .json()
          .catch(function () {
            return { detail: "The server answered " + resp.status + "." };
          })
          .then(function (data) {
            if (!resp.ok) {
              var err = new Error(data.detail || "Request failed (" + resp.status + ").");
              err.status = resp.status;
              throw err;
            }
            return data;
          });
      });
    }

    // ------------------------------------------------------------------ spoken answers
    // Whatever is said lands in the answer box, for the candidate to read and edit before
    // submitting: nothing is sent as an answer without them.
    function insertText(text) {
      text = (text || "").trim();
      if (!text) return;
      var sep = textarea.value && !/\s$/.test(textarea.value) ? " " : "";
      textarea.value = (textarea.value + sep + text).slice(0, maxChars);
      updateCount();
      saveDraft();
      textarea.focus();
    }

    var Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
    var dictateBtn = form.querySelector("#dictate-btn");
    if (dictateBtn && Recognition) {
      var recognition = null;
      dictateBtn.hidden = false;
      dictateBtn.addEventListener("click", function () {
        if (recognition) {
          recognition.stop();
          return;
        }
        recognition = new Recognition();
        recognition.lang = document.documentElement.lang || "en";
        recognition.continuous = true;
        recognition.interimResults = false;
        recognition.onresult = function (ev) {
          var heard = "";
          for (var i = ev.resultIndex; i < ev.results.length; i++) {
            if (ev.results[i].isFinal) heard += ev.results[i][0].transcript + " ";
          }
          insertText(heard);
        };
        recognition.onerror = function (ev) {
          showError("Dictation stopped: " + (ev.error || "the browser could not listen") + ". You can type instead.");
        };
        recognition.onend = function () {
          recognition = null;
          dictateBtn.textContent = "Dictate";
          dictateBtn.setAttribute("aria-pressed", "false");
          say("Dictation stopped. Check the text before you submit it.");
        };
        recognition.start();
        dictateBtn.textContent = "Stop dictation";
        dictateBtn.setAttribute("aria-pressed", "true");
        say("Dictating: speak your answer, then press Stop dictation.");
      });
    }

    var recordBtn = form.querySelector("#record-btn");
    var canRecord = window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia;
    if (recordBtn && canRecord) {
      var recorder = null;
      recordBtn.hidden = false;
      recordBtn.addEventListener("click", function () {
        if (recorder) {
          recorder.stop();
          return;
        }
        navigator.mediaDevices
          .getUserMedia({ audio: true })
          .then(function (stream) {
            var chunks = [];
            recorder = new window.MediaRecorder(stream);
            recorder.ondataavailable = function (ev) {
              if (ev.data && ev.data.size) chunks.push(ev.data);
            };
            recorder.onstop = function () {
              stream.getTracks().forEach(function (t) {
                t.stop();
              });
              var type = (recorder.mimeType || "audio/webm").split(";")[0];
              recorder = null;
              recordBtn.textContent = "Record audio";
              recordBtn.setAttribute("aria-pressed", "false");
              var body = new FormData();
              body.append("audio", new Blob(chunks, { type: type }), "answer." + (type.split("/")[1] || "webm"));
              say("Transcribing your recording...", true);
              post(recordBtn.getAttribute("data-url"), body)
                .then(function (data) {
                  insertText(data.text);
                  say("The transcript is in the answer box: check it before you submit.");
                })
                .catch(function (err) {
                  say("");
                  showError(err.message + " You can type the answer instead.");
                });
            };
            recorder.start();
            recordBtn.textContent = "Stop recording";
            recordBtn.setAttribute("aria-pressed", "true");
            say("Recording: speak your answer, then press Stop recording.");
          })
          .catch(function () {
            showError("The microphone is not available. You can type the answer instead.");
          });
      });
    }

    function act(kind, url) {
      var text = textarea.value;
      var turnId = turnInput.value;
      var body = new FormData();
      body.append("csrf_token", csrfToken());
      body.append("turn_id", turnId);
      var optimistic = null;
      var hadFocus = document.activeElement === textarea;
      if (kind === "answer") {
        if (!text.trim()) {
          showError("Write an answer first, or use Skip question or I don't know.");
          textarea.focus();
          return;
        }
        if (!lastSent || lastSent.text !== text || lastSent.turn !== turnId) lastSent = { text: text, key: randomKey(), turn: turnId };
        keyInput.value = lastSent.key;
        body.append("answer", text);
        body.append("idempotency_key", lastSent.key);
      }
      clearError();
      busy = true;
      setButtons(false);
      if (kind === "hint") {
        say("Getting a hint...", true);
      } else {
        optimistic = optimisticTurn(text, kind);
        if (kind === "answer") {
          textarea.value = "";
          if (store) store.removeItem(draftKey());
          updateCount();
          textarea.setAttribute("placeholder", "You can start on your next answer while this one is graded.");
        }
        say(kind === "skip" ? "Skipping..." : "Grading your answer...", true);
      }
      post(url, body)
        .then(function (data) {
          busy = false;
          if (kind === "hint") {
            var list = document.getElementById("hint-list");
            if (!list) {
              var box = document.getElementById("hints");
              var h = document.createElement("h3");
              h.className = "hints-head";
              h.textContent = "Hints";
              list = document.createElement("ul");
              list.id = "hint-list";
              list.className = "hint-list";
              box.appendChild(h);
              box.appendChild(list);
            }
            var li = document.createElement("li");
            li.textContent = data.hint;
            list.appendChild(li);
            setButtons(true);
            updateHintButton(data.hints_left);
            say(data.announce);
            if (document.activeElement === document.body || document.activeElement.disabled) textarea.focus();
            return;
          }
          lastSent = null;
          applyState(data, turnId);
          setButtons(true);
          textarea.removeAttribute("placeholder");
          say(data.announce + (data.notice ? " " + data.notice : ""));
          focusAfterUpdate(hadFocus);
        })
        .catch(function (err) {
          busy = false;
          if (optimistic && optimistic.parentNode) optimistic.parentNode.removeChild(optimistic);
          if (kind === "answer" && !textarea.value) {
            textarea.value = text; // nothing is lost: the answer goes back in the box
            saveDraft();
            updateCount();
          }
          textarea.removeAttribute("placeholder");
          setButtons(true);
          say("");
          var msg = err && err.status ? err.message : "The connection failed. Your answer is still in the box; try again.";
          if (err && err.status === 409) msg += " Reload the page to see the current question.";
          showError(msg);
        });
    }

    form.addEventListener("submit", function (ev) {
      var btn = ev.submitter || submitBtn;
      ev.preventDefault();
      if (busy) return;
      var url = btn.getAttribute("formaction") || form.getAttribute("action");
      var kind = btn.id === "idk-btn" ? "idk" : btn.id === "skip-btn" ? "skip" : btn.id === "hint-btn" ? "hint" : "answer";
      act(kind, url);
    });
  }

  // ---------------------------------------------------------------------------- report page
  function initCopy() {
    var buttons = document.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (ev) {
        var input = document.getElementById(ev.currentTarget.getAttribute("data-copy"));
        var status = document.getElementById("share-live");
        if (!input) return;
        input.select();
        var done = function () {
          if (status) status.textContent = "Link copied.";
        };
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(input.value).then(done, function () {
            if (status) status.textContent = "Select the link and copy it.";
          });
        } else {
          try {
            document.execCommand("copy");
            done();
          } catch (e) {
            /* the link stays selected for a manual copy */
          }
        }
      });
    }
  }

  function init() {
    initStart();
    initInterview();
    initCopy();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
