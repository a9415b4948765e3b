// The playground: streams POST /v1/chat/completions with "speculation": {"provenance": true} and shows how each
// token was made (chunk field speculation.tokens: [{index, id, text, kind, round, gamma}]), the policy's γ per
// round, and tokens over time; then, when asked, the same prompt decoded plainly ("enabled": false) for its rate.
'use strict';

(() => {
    const $ = (id) => document.getElementById(id);
    const SVG = 'http://www.w3.org/2000/svg';
    const KINDS = ['accepted', 'corrected', 'bonus', 'plain'];

    /** One streamed answer: its token spans, its rounds and when each token arrived. */
    class Run {
        constructor(output) {
            this.output = output;
            this.spans = new Map(); // token index -> its <span>
            this.rounds = new Map(); // round -> {gamma, accepted}
            this.arrivals = []; // [ms since the first token, tokens so far]
            this.firstAt = null;
            this.lastAt = null;
            this.figures = null; // the finish chunk's speculation object
            output.textContent = '';
        }

        /** A chunk of the stream: its tokens (pieces of one token share an index) and, last, the figures. */
        accept(chunk) {
            const now = performance.now();
            const tokens = (chunk.speculation && chunk.speculation.tokens) || [];
            for (const token of tokens) {
                let span = this.spans.get(token.index);
                if (!span) {
                    span = document.createElement('span');
                    span.className = 'tok tok-' + (KINDS.includes(token.kind) ? token.kind : 'plain');
                    span.title = `${token.kind} · round ${token.round} · γ ${token.gamma} · token ${token.id}`;
                    span.dataset.round = token.round;
                    this.output.appendChild(span);
                    this.spans.set(token.index, span);
                    this.count(token, now);
                }
                span.textContent += token.text;
            }
            const choice = chunk.choices && chunk.choices[0];
            if (choice && choice.finish_reason) {
                this.figures = chunk.speculation || {};
                this.finishReason = choice.finish_reason;
            }
        }

        count(token, now) {
            if (this.firstAt === null) {
                this.firstAt = now;
            }
            this.lastAt = now;
            this.arrivals.push([now - this.firstAt, this.spans.size]);
            const round = this.rounds.get(token.round) || { gamma: token.gamma, accepted: 0 };
            if (token.kind === 'accepted') {
                round.accepted++;
            }
            this.rounds.set(token.round, round);
        }

        /**
         * Decode rate: the tokens after the first chunk's over the time from the first chunk to the last (so no
         * prefill, no queueing, and no first round whose time is not measured).
         */
        rate() {
            const seconds = (this.lastAt - this.firstAt) / 1000;
            const first = this.arrivals.filter(([ms]) => ms === 0).length;
            return this.spans.size > first && seconds > 0 ? (this.spans.size - first) / seconds : null;
        }

        text() {
            return this.output.textContent;
        }
    }

    let speculative = null;
    let plain = null;

    function headers() {
        const key = $('api-key').value.trim();
        return key ? { 'Content-Type': 'application/json', Authorization: 'Bearer ' + key }
            : { 'Content-Type': 'application/json' };
    }

    function status(text, state) {
        $('status').textContent = text;
        $('status').dataset.state = state;
    }

    async function loadOptions() {
        try {
            const response = await fetch('/playground/options', { headers: headers() });
            if (!response.ok) {
                throw new Error(response.status === 401 ? 'enter the API key' : 'HTTP ' + response.status);
            }
            const options = await response.json();
            $('model').textContent = options.model;
            fill($('policy'), options.policies);
            fill($('proposer'), options.proposers);
        }
        catch (error) {
            $('model').textContent = '? (' + error.message + ')';
        }
    }

    function fill(select, values) {
        const chosen = select.value;
        select.length = 1;
        for (const value of values) {
            select.add(new Option(value, value, false, value === chosen));
        }
    }

    function body(speculate) {
        const speculation = { provenance: true };
        if (speculate) {
            if ($('policy').value) speculation.policy = $('policy').value;
            if ($('gamma').value) speculation.gamma = Number($('gamma').value);
            if ($('proposer').value) speculation.proposer = $('proposer').value;
        }
        else {
            speculation.enabled = false;
        }
        return {
            messages: [{ role: 'user', content: $('prompt').value }],
            max_tokens: Number($('max-tokens').value) || 128,
            temperature: Number($('temperature').value) || 0,
            stream: true,
            speculation,
        };
    }

    /** Streams one request into run, redrawing as chunks arrive; throws the gateway's error message. */
    async function stream(request, run) {
        const response = await fetch('/v1/chat/completions',
            { method: 'POST', headers: headers(), body: JSON.stringify(request) });
        if (!response.ok) {
            const error = await response.json().catch(() => null);
            throw new Error(error && error.error ? error.error.message : 'HTTP ' + response.status);
        }
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = '';
        for (;;) {
            const { done, value } = await reader.read();
            if (done) {
                return;
            }
            buffer += decoder.decode(value, { stream: true });
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
                const event = buffer.slice(0, end);
                buffer = buffer.slice(end + 2);
                if (!event.startsWith('data: ') || event === 'data: [DONE]') {
                    continue;
                }
                const chunk = JSON.parse(event.slice(6));
                if (chunk.error) {
                    throw new Error(chunk.error.message);
                }
                run.accept(chunk);
                redraw();
            }
        }
    }

    async function generate(event) {
        event.preventDefault();
        $('run').disabled = true;
        plain = null;
        $('plain-output').textContent = '';
        $('identical').textContent = '';
        speculative = new Run($('output'));
        try {
            status('Generating speculatively…', 'running');
            await stream(body(true), speculative);
            if ($('compare').checked) {
                status('Generating plainly, for comparison…', 'running');
                plain = new Run($('plain-output'));
                await stream(body(false), plain);
                if (Number($('temperature').value) === 0) {
                    $('identical').textContent = plain.text() === speculative.text()
                        ? '— identical to the speculative answer (greedy: speculation is lossless)'
                        : '— differs from the speculative answer';
                }
            }
            status('Done.', 'done');
        }
        catch (error) {
            status('Error: ' + error.message, 'error');
        }
        finally {
            $('run').disabled = false;
            redraw();
        }
    }

    let redrawPending = false;

    function redraw() {
        if (!redrawPending) {
            redrawPending = true;
            requestAnimationFrame(() => {
                redrawPending = false;
                drawGamma();
                drawRates();
                showStats();
            });
        }
    }

    function element(name, attributes, parent) {
        const node = document.createElementNS(SVG, name);
        for (const [key, value] of Object.entries(attributes)) {
            node.setAttribute(key, value);
        }
        parent.appendChild(node);
        return node;
    }

    /** Plot area of a 600 × 220 chart (captions above it), and its axes with the largest values labelled. */
    function frame(svg, xMax, yMax, xLabel, yLabel) {
        svg.textContent = '';
        const box = { left: 36, right: 590, top: 26, bottom: 190 };
        element('line', { class: 'axis', x1: box.left, y1: box.bottom, x2: box.right, y2: box.bottom }, svg);
        element('line', { class: 'axis', x1: box.left, y1: box.top, x2: box.left, y2: box.bottom }, svg);
        element('text', { class: 'axis-label', x: 4, y: box.top + 4 }, svg).textContent = yMax;
        element('text', { class: 'axis-label', x: 4, y: box.bottom }, svg).textContent = 0;
        element('text', { class: 'axis-label', x: box.right - 90, y: 210 }, svg).textContent =
            xLabel + ' ' + (Number.isInteger(xMax) ? xMax : xMax.toFixed(1));
        element('text', { class: 'axis-label', x: box.left, y: 14 }, svg).textContent = yLabel;
        box.x = (value) => box.left + (box.right - box.left) * value / xMax;
        box.y = (value) => box.bottom - (box.bottom - box.top) * value / yMax;
        return box;
    }

    function drawGamma() {
        const svg = $('gamma-chart');
        const rounds = speculative ? [...speculative.rounds.entries()].sort((a, b) => a[0] - b[0]) : [];
        const lastRound = Math.max(1, ...rounds.map(([round]) => round));
        const yMax = Math.max(1, ...rounds.map(([, r]) => Math.max(r.gamma, r.accepted)));
        const box = frame(svg, lastRound, yMax, 'round', 'γ and drafts accepted');
        const width = Math.max(1, (box.right - box.left) / lastRound - 1);
        const points = [];
        for (const [round, { gamma, accepted }] of rounds) {
            const x = box.x(round - 0.5);
            element('rect', { class: 'accepted-bar', x: x - width / 2, y: box.y(accepted), width,
                height: box.bottom - box.y(accepted) }, svg);
            points.push(`${x},${box.y(gamma)}`);
        }
        element('polyline', { class: 'gamma-line', points: points.join(' ') }, svg);
        for (const [round, { gamma, accepted }] of rounds) {
            element('circle', { class: 'gamma-point', cx: box.x(round - 0.5), cy: box.y(gamma), r: 2.5 }, svg)
                .appendChild(document.createElementNS(SVG, 'title')).textContent =
                `round ${round}: γ ${gamma}, ${accepted} accepted`;
        }
    }

    function drawRates() {
        const svg = $('rate-chart');
        const runs = [[speculative, 'rate-spec'], [plain, 'rate-plain']].filter(([run]) => run && run.arrivals.length);
        const seconds = Math.max(0.1, ...runs.map(([run]) => run.arrivals[run.arrivals.length - 1][0] / 1000));
        const tokens = Math.max(1, ...runs.map(([run]) => run.spans.size));
        const box = frame(svg, seconds, tokens, 'seconds', 'tokens');
        for (const [run, style] of runs) {
            const points = run.arrivals.map(([ms, count]) => `${box.x(ms / 1000)},${box.y(count)}`);
            element('polyline', { class: 'rate-line ' + style, points: points.join(' ') }, svg);
        }
        element('text', { class: 'axis-label', x: box.right - 150, y: 14 }, svg).textContent =
            '— speculative   - - plain';
    }

    function showStats() {
        const rate = speculative && speculative.rate();
        const plainRate = plain && plain.rate();
        const figures = speculative && speculative.figures;
        $('stat-policy').textContent = figures
            ? (figures.policy || '–') + (figures.reason ? ' (' + figures.reason + ')' : '') : '–';
        $('stat-tokens').textContent = speculative ? speculative.spans.size + ' · ' + speculative.rounds.size : '–';
        $('stat-accepted').textContent = figures && figures.drafted !== undefined
            ? `${figures.accepted} of ${figures.drafted}` : '–';
        $('stat-rate').textContent = rate ? rate.toFixed(1) : '–';
        $('stat-plain-rate').textContent = plainRate ? plainRate.toFixed(1) : '–';
        $('stat-speedup').textContent = rate && plainRate ? (rate / plainRate).toFixed(2) + '×' : '–';
    }

    $('form').addEventListener('submit', generate);
    $('api-key').addEventListener('change', loadOptions);
    loadOptions();
    redraw();
})();
