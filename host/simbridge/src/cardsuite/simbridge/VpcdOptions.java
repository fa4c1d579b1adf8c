package cardsuite.simbridge;

import java.util.ArrayList;
import java.util.List;

/** VpcdMain's command line. */
final class VpcdOptions {
    static final String USAGE = String.join("\n",
            "usage: java -cp <jcardsim, asm, bridge> cardsuite.simbridge.VpcdMain --port PORT --classpath APPLET_CP",
            "           [--applet AIDHEX:fully.qualified.Class[:PARAMSHEX]]... [--host HOST]",
            "           [--connect-timeout SECONDS] [--trace]",
            "  --port             vpcd's port for the reader slot (Debian: 35963 + slot)",
            "  --host             vpcd's host (default 127.0.0.1)",
            "  --classpath        where the applet classes are (File.pathSeparator-separated)",
            "  --applet           install an applet instance with this AID and install parameters (repeatable)",
            "  --connect-timeout  how long to retry connecting while pcscd starts (default 5 s)",
            "  --trace            log every command and response to stderr");

    /** One --applet: instance AID, applet class, install parameters. */
    static final class AppletSpec {
        final byte[] aid;
        final String className;
        final byte[] params;

        private AppletSpec(byte[] aid, String className, byte[] params) {
            this.aid = aid;
            this.className = className;
            this.params = params;
        }

        static AppletSpec parse(String text) {
            String[] parts = text.split(":", -1);
            if (parts.length < 2 || parts.length > 3 || parts[1].isEmpty()) {
                throw new IllegalArgumentException("--applet wants AIDHEX:class[:PARAMSHEX], got " + text);
            }
            return new AppletSpec(Hex.decode(parts[0]), parts[1],
                    parts.length == 3 ? Hex.decode(parts[2]) : new byte[0]);
        }
    }

    String host = "127.0.0.1";
    int port;
    String classPath;
    final List<AppletSpec> applets = new ArrayList<>();
    long connectTimeoutMillis = 5000;
    boolean trace;
    boolean help;

    /** @throws IllegalArgumentException with a message for the user */
    static VpcdOptions parse(String[] args) {
        VpcdOptions options = new VpcdOptions();
        for (int i = 0; i < args.length; i++) {
            String option = args[i];
            switch (option) {
                case "--port": options.port = parsePort(value(args, ++i, option)); break;
                case "--host": options.host = value(args, ++i, option); break;
                case "--classpath": options.classPath = value(args, ++i, option); break;
                case "--applet": options.applets.add(AppletSpec.parse(value(args, ++i, option))); break;
                case "--connect-timeout":
                    options.connectTimeoutMillis = (long) (parseNumber(value(args, ++i, option), option) * 1000);
                    break;
                case "--trace": options.trace = true; break;
                case "-h": case "--help": options.help = true; break;
                default: throw new IllegalArgumentException("unknown option " + option);
            }
        }
        if (!options.help && (options.port == 0 || options.classPath == null)) {
            throw new IllegalArgumentException("--port and --classpath are required");
        }
        return options;
    }

    private static String value(String[] args, int index, String option) {
        if (index >= args.length) {
            throw new IllegalArgumentException(option + " needs a value");
        }
        return args[index];
    }

    private static int parsePort(String text) {
        try {
            int port = Integer.parseInt(text);
            if (port >= 1 && port <= 65535) {
                return port;
            }
        } catch (NumberFormatException notANumber) {
            // reported below
        }
        throw new IllegalArgumentException("--port must be 1..65535, got " + text);
    }

    private static double parseNumber(String text, String option) {
        try {
            return Double.parseDouble(text);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(option + " wants a number, got " + text);
        }
    }
}
