package dev.specula.cli;

import dev.specula.engine.ModelPair;
import dev.specula.model.ExecutionProvider;
import dev.specula.model.RuntimeOptions;
import dev.specula.models.tiny.TinyModels;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/** Which models to load and how: {@code --target}, {@code --draft}, {@code --threads}, {@code --provider}, {@code --device}. */
final class ModelOptions {

    static final Set<String> OPTIONS = Set.of("target", "draft", "threads", "provider", "device");

    private ModelOptions() {
    }

    /** No --target: the embedded pair (its draft too, unless --draft names another). --target alone: target only. */
    static ModelPair load(Arguments arguments) {
        RuntimeOptions runtime = runtime(arguments);
        Path target;
        Path draft;
        if (arguments.has("target")) {
            target = Path.of(arguments.string("target", null));
            draft = arguments.has("draft") ? Path.of(arguments.string("draft", null)) : null;
        }
        else {
            if (!TinyModels.isAvailable()) {
                throw new CliException("No --target given and the embedded pair (specula-models-tiny) is not on the classpath");
            }
            TinyModels.Pair pair = TinyModels.extract();
            target = pair.target();
            draft = arguments.has("draft") ? Path.of(arguments.string("draft", null)) : pair.draft();
        }
        return ModelPair.load(target, draft, runtime);
    }

    private static RuntimeOptions runtime(Arguments arguments) {
        String provider = arguments.string("provider", "cpu").toUpperCase(Locale.ROOT);
        ExecutionProvider executionProvider;
        try {
            executionProvider = ExecutionProvider.valueOf(provider);
        }
        catch (IllegalArgumentException ex) {
            throw new CliException("--provider must be cpu or cuda but was '" + arguments.string("provider", "") + "'");
        }
        return RuntimeOptions.defaults()
            .withProvider(executionProvider, arguments.integer("device", 0, 0, 64))
            .withIntraOpThreads(arguments.integer("threads", 1, 0, 1024));
    }
}
