package dev.specula.sampling;

import java.util.List;

import org.jspecify.annotations.Nullable;

/**
 * Several processors applied in order to each row and moved together; the last one makes
 * the greedy choice (a grammar goes last, so it masks the penalized row).
 */
public final class LogitsProcessors implements LogitsProcessor {

    private final LogitsProcessor[] processors;

    private LogitsProcessors(List<LogitsProcessor> processors) {
        this.processors = processors.toArray(LogitsProcessor[]::new);
    }

    /** The processors in order; null when there are none, one itself when one. */
    public static @Nullable LogitsProcessor of(List<LogitsProcessor> processors) {
        if (processors.isEmpty()) {
            return null;
        }
        return processors.size() == 1 ? processors.get(0) : new LogitsProcessors(processors);
    }

    @Override
    public void process(float[] logits, int offset, int width) {
        for (LogitsProcessor processor : processors) {
            processor.process(logits, offset, width);
        }
    }

    @Override
    public int greedyChoice(float[] logits, int offset, int width) {
        for (int i = 0; i < processors.length - 1; i++) {
            processors[i].process(logits, offset, width);
        }
        return processors[processors.length - 1].greedyChoice(logits, offset, width);
    }

    @Override
    public void advance(int token) {
        for (LogitsProcessor processor : processors) {
            processor.advance(token);
        }
    }

    @Override
    public int mark() {
        return processors[0].mark();
    }

    @Override
    public void resetTo(int mark) {
        for (LogitsProcessor processor : processors) {
            processor.resetTo(mark);
        }
    }

}
