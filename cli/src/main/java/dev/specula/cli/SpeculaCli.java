package dev.specula.cli;

import java.io.PrintStream;

import dev.specula.engine.VocabularyMismatchException;
import dev.specula.model.ExecutionProviderUnavailableException;
import dev.specula.model.ModelLoadException;
import dev.specula.request.InvalidRequestException;
import dev.specula.tokenizer.ChatTemplateException;

/**
 * {@code specula-cli generate ...}, {@code specula-cli bench ...} and
 * {@code specula-cli cost ...}. Bad input exits non-zero with one clear line on stderr.
 */
public final class SpeculaCli {

    private SpeculaCli() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("-h")) {
            err.println("usage: specula-cli " + GenerateCommand.USAGE);
            err.println("       specula-cli " + BenchCommand.USAGE);
            err.println("       specula-cli " + CostCommand.USAGE);
            return args.length == 0 ? 2 : 0;
        }
        try {
            return switch (args[0]) {
                case "generate" -> GenerateCommand.run(args, out, err);
                case "bench" -> BenchCommand.run(args, out, err);
                case "cost" -> CostCommand.run(args, out, err);
                default -> throw new CliException("unknown command '" + args[0] + "': use generate, bench or cost");
            };
        }
        catch (CliException | ModelLoadException | VocabularyMismatchException | InvalidRequestException
                | ExecutionProviderUnavailableException | ChatTemplateException ex) {
            err.println("specula-cli: error: " + ex.getMessage());
            return 2;
        }
        catch (Exception ex) {
            err.println("specula-cli: failed: " + ex);
            return 1;
        }
    }

}
