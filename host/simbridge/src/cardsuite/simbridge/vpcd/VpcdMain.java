/*
 * The bridge is compiled with `javac --release 11` (not 8): it uses jdk.net.ExtendedSocketOptions.TCP_QUICKACK
 * (JDK 10+) and Socket.setOption (JDK 9+). It runs on the JDK 17 of the toolchain; only the applets have to be
 * Java 8 class files.
 *   javac --release 11 -cp 'deps/java/*' -d build/simbridge/classes $(find host/simbridge/src -name '*.java')
 */
package cardsuite.simbridge.vpcd;

import cardsuite.simbridge.SimulatedCard;
import cardsuite.simbridge.gp.Bytes;
import cardsuite.simbridge.gp.CardManager;
import cardsuite.simbridge.gp.StaticKeys;
import java.io.EOFException;
import java.io.IOException;
import java.io.PrintStream;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

/**
 * A simulated card behind vpcd: installs the applets, connects to vpcd's port as the virtual card and answers
 * pcscd until the connection ends. Prints {@code READY port=<n> atr=<hex>} on stdout once vpcd talks to it (a
 * connection alone may only wait in vpcd's queue behind another card); logs to stderr or the --log file (mode
 * 0600); --trace adds every command and response, masked by the host's rules. Exit status: 1 when the vpcd
 * connection fails or is lost, 2 for a usage or install error, 3 when vpcd does not take the connection within
 * --attach-timeout (another card holds the slot); SIGTERM/SIGINT close the connection and end with the JVM's status
 * for the signal (143/130).
 */
public final class VpcdMain {
    private static final byte[] SW_UNKNOWN = {0x6F, 0x00};

    /** Exit status when vpcd never talks to this card: another card holds the slot. */
    static final int EXIT_NOT_ATTACHED = 3;

    /** rw------- : a trace shows APDU headers and lengths, enough to be nobody else's business. */
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");

    private final VpcdOptions options;
    private final SimulatedCard card;
    private MaskRules mask;
    private VpcdLink link;
    /** Set by the shutdown hook, so the read it interrupts is not reported as a lost connection. */
    private volatile boolean stopping;

    private VpcdMain(VpcdOptions options, SimulatedCard card) {
        this.options = options;
        this.card = card;
    }

    public static void main(String[] args) {
        VpcdOptions options;
        try {
            options = VpcdOptions.parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("simbridge: " + e.getMessage() + "\n" + VpcdOptions.USAGE);
            System.exit(2);
            return;
        }
        if (options.help) {
            System.out.println(VpcdOptions.USAGE);
            return;
        }
        MaskRules mask;
        try {
            if (options.log != null) {
                System.setErr(openLog(Paths.get(options.log)));
            }
            mask = options.maskRules == null ? MaskRules.hideAll() : MaskRules.load(Paths.get(options.maskRules));
        } catch (IOException | IllegalArgumentException e) {
            System.err.println("simbridge: " + e.getMessage());
            System.exit(2);
            return;
        }
        SimulatedCard card;
        try {
            card = new SimulatedCard(options.classPath);
            if (options.commitCapacity > 0) {
                card.setCommitCapacity(options.commitCapacity);
            }
            for (VpcdOptions.AppletSpec applet : options.applets) {
                card.install(applet.aid, applet.className, applet.params);
            }
            if (options.cardManager != null) {
                setUpCardManager(card, options);
            }
        } catch (IllegalArgumentException | IllegalStateException e) {
            System.err.println("simbridge: cannot set up the card: " + e.getMessage());
            System.exit(2);
            return;
        }
        VpcdMain main = new VpcdMain(options, card);
        main.mask = mask;
        int status = main.run();
        if (status != 0) {
            System.exit(status);
        }
    }

    /** The ISD: keys from CARDSUITE_SIM_KEYS (or the development keys), the loadable packages, the settings. */
    private static void setUpCardManager(SimulatedCard card, VpcdOptions options) {
        String keyText = System.getenv(VpcdOptions.KEYS_VARIABLE);
        StaticKeys keys = keyText == null || keyText.isEmpty() ? StaticKeys.development()
                : StaticKeys.parse(keyText, options.keyVersion);
        for (String[] loadable : options.loadables) {
            String[] nameAndVersion = loadable[1].split(":", 2);
            int major = 1;
            int minor = 0;
            if (nameAndVersion.length == 2) {
                String[] version = nameAndVersion[1].split("\\.", 2);
                try {
                    major = Integer.parseInt(version[0]);
                    minor = version.length == 2 ? Integer.parseInt(version[1]) : 0;
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("--loadable version is MAJOR.MINOR, got " + nameAndVersion[1]);
                }
            }
            card.registerLoadable(Bytes.fromHex(loadable[0]), nameAndVersion[0], major, minor);
        }
        for (String[] applet : options.appletClasses) {
            card.registerAppletClass(Bytes.fromHex(applet[0]), applet[1]);
        }
        for (byte[] packageAid : options.preloads) {
            card.preload(packageAid);
        }
        CardManager manager = card.enableCardManager(options.cardManager, options.scpParameter, options.keyVersion,
                keys.enc(), keys.mac(), keys.dek());
        if (options.authLimit > 0) {
            manager.setAuthenticationLimit(options.authLimit);
        }
        if (options.cardSerial != null) {
            manager.setSerial(options.cardSerial);
        }
        if (options.keyKdf != null) {
            manager.setDiversifiedKeys(options.keyKdf, keys.enc()); // one key: the master
        }
        if (options.cardLifeCycle != 0) {
            manager.setCardLifeCycle(options.cardLifeCycle);
        }
    }

    /**
     * The log file, mode 0600: created so, or an existing file narrowed to it before anything is written
     * (a log left by an older bridge may be 0644). Symbolic links are not followed.
     */
    static PrintStream openLog(Path path) throws IOException {
        try {
            Files.createFile(path, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        } catch (FileAlreadyExistsException exists) {
            if (Files.isSymbolicLink(path)) {
                throw new IOException("the log " + path + " is a symbolic link; not writing through it");
            }
        }
        Files.setPosixFilePermissions(path, OWNER_ONLY); // an existing log may be 0644
        return new PrintStream(Files.newOutputStream(path, LinkOption.NOFOLLOW_LINKS, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING), true, StandardCharsets.UTF_8);
    }

    private int run() {
        try {
            link = VpcdLink.connect(options.host, options.port, options.connectTimeoutMillis);
        } catch (IOException e) {
            log("cannot connect to vpcd at " + options.host + ":" + options.port + " (is pcscd running?): " + e);
            return 1;
        } catch (InterruptedException e) {
            return 1;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(this::stop, "simbridge-shutdown"));
        if (options.exitOnStdinEof) {
            watchParent();
        }
        try {
            byte[] first;
            try {
                first = link.receiveWithin(options.attachTimeoutMillis);
            } catch (SocketTimeoutException queued) {
                stopping = true;
                log("vpcd did not talk to this card within " + options.attachTimeoutMillis / 1000.0 + " s of connecting"
                        + " to port " + options.port + ": another card holds the slot; exiting");
                return EXIT_NOT_ATTACHED;
            }
            System.out.println("READY port=" + options.port + " atr=" + Bytes.hex(card.atr()));
            System.out.flush();
            log("attached to vpcd at " + options.host + ":" + options.port + ", " + options.applets.size()
                    + " applet(s) installed" + (card.cardManager() == null ? "" : ", card manager "
                    + options.cardManager.toUpperCase(java.util.Locale.ROOT) + String.format(" i=%02X key version %d",
                    card.cardManager().scpParameter(), card.cardManager().keyVersion())));
            serve(first);
            return 0;
        } catch (EOFException e) {
            return stopping ? 0 : lost("vpcd closed the connection (pcscd stopped?)");
        } catch (IOException e) {
            return stopping ? 0 : lost("vpcd connection failed: " + e.getMessage());
        }
    }

    private void serve(byte[] first) throws IOException {
        byte[] message = first;
        while (true) {
            if (message.length == 1) {
                control(message[0]);
            } else {
                link.send(respond(message));
            }
            message = link.receive();
        }
    }

    private void control(int code) throws IOException {
        switch (code) {
            case VpcdLink.POWER_OFF: trace("power off"); card.powerOff(); break;
            case VpcdLink.POWER_ON: trace("power on"); card.powerOn(); break;
            case VpcdLink.RESET: trace("reset"); card.reset(); break;
            case VpcdLink.GET_ATR: link.send(card.atr()); break; // pcscd polls it for card presence: not traced
            default: log("ignoring unknown vpcd control code " + code);
        }
    }

    private byte[] respond(byte[] command) {
        if (options.trace) {
            trace("> " + mask.command(command));
        }
        byte[] response;
        try {
            response = card.transmit(command);
        } catch (IllegalStateException poweredOff) {
            log("command while the card is powered off; answering 6F00");
            response = SW_UNKNOWN.clone();
        } catch (RuntimeException bridgeBug) {
            log("bridge error, answering 6F00: " + bridgeBug);
            bridgeBug.printStackTrace();
            response = SW_UNKNOWN.clone();
        }
        if (options.killHost != null) {
            String killed = options.killHost.afterCommand();
            if (killed != null) {
                log(killed);
            }
        }
        if (options.trace) {
            trace("< " + mask.response(response));
        }
        return response;
    }

    /**
     * The parent keeps our stdin open and never writes: end of file means it is gone, even by SIGKILL, which
     * it cannot catch to stop us. Without this the bridge would keep the vpcd slot as an orphan.
     */
    private void watchParent() {
        Thread watcher = new Thread(() -> {
            try {
                while (System.in.read() >= 0) {
                    // nothing is ever sent: only the end of the pipe matters
                }
            } catch (IOException lost) {
                // the same as the end of the pipe
            }
            log("the parent process is gone (stdin closed); exiting");
            System.exit(0);
        }, "simbridge-parent-watch");
        watcher.setDaemon(true);
        watcher.start();
    }

    private void stop() {
        if (!stopping) {
            stopping = true;
            log("terminated; closing the vpcd connection");
        }
        link.close();
    }

    private int lost(String why) {
        stopping = true;
        log(why + "; exiting");
        return 1;
    }

    private void trace(String line) {
        if (options.trace) {
            log(line);
        }
    }

    private void log(String line) {
        System.err.println("simbridge[" + options.port + "]: " + line);
    }
}
