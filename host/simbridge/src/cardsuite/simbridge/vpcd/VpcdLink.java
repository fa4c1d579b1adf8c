package cardsuite.simbridge.vpcd;

import java.io.Closeable;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import jdk.net.ExtendedSocketOptions;

/**
 * The virtual card's end of a vpcd connection (vsmartcard's protocol): every message is a 2-byte big-endian
 * length and a payload. A 1-byte payload from vpcd is a control code, anything longer a command APDU; the card
 * answers GET_ATR and APDUs with one message each.
 */
final class VpcdLink implements Closeable {
    static final int POWER_OFF = 0;
    static final int POWER_ON = 1;
    static final int RESET = 2;
    static final int GET_ATR = 4;

    private static final int CONNECT_ATTEMPT_MILLIS = 1000;
    private static final int RETRY_PAUSE_MILLIS = 100;

    private final Socket socket;
    private final DataInputStream in;
    private final OutputStream out;
    private final boolean quickAck;

    private VpcdLink(Socket socket) throws IOException {
        this.socket = socket;
        // vpcd writes the length and the payload separately and Nagles the second write until it sees our ACK;
        // a delayed ACK would stall every APDU by ~40 ms. NODELAY for our side, QUICKACK for vpcd's.
        socket.setTcpNoDelay(true);
        quickAck = socket.supportedOptions().contains(ExtendedSocketOptions.TCP_QUICKACK);
        in = new DataInputStream(socket.getInputStream());
        out = socket.getOutputStream();
    }

    /** Connects to vpcd, retrying while nobody listens yet (pcscd may still be starting) until the timeout. */
    static VpcdLink connect(String host, int port, long timeoutMillis) throws IOException, InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMillis;
        while (true) {
            Socket socket = new Socket();
            try {
                socket.connect(new InetSocketAddress(host, port), CONNECT_ATTEMPT_MILLIS);
                return new VpcdLink(socket);
            } catch (ConnectException | SocketTimeoutException notYet) {
                socket.close();
                if (System.currentTimeMillis() >= deadline) {
                    throw notYet;
                }
                Thread.sleep(RETRY_PAUSE_MILLIS);
            } catch (IOException e) {
                socket.close();
                throw e;
            }
        }
    }

    /** The next message from vpcd; EOFException when it closes the connection. */
    byte[] receive() throws IOException {
        if (quickAck) {
            // Linux drops QUICKACK again after some ACKs: re-arm it before every read
            socket.setOption(ExtendedSocketOptions.TCP_QUICKACK, true);
        }
        byte[] message = new byte[in.readUnsignedShort()];
        in.readFully(message);
        return message;
    }

    /**
     * The first message from vpcd: SocketTimeoutException when none comes within the timeout. vpcd asks a card
     * it has accepted for its ATR at once (its presence poll); while another card holds the slot our connection
     * only waits in the listening socket's queue, connected but unanswered.
     */
    byte[] receiveWithin(int timeoutMillis) throws IOException {
        socket.setSoTimeout(timeoutMillis);
        try {
            return receive();
        } finally {
            socket.setSoTimeout(0);
        }
    }

    void send(byte[] payload) throws IOException {
        byte[] frame = new byte[2 + payload.length];
        frame[0] = (byte) (payload.length >> 8);
        frame[1] = (byte) payload.length;
        System.arraycopy(payload, 0, frame, 2, payload.length);
        out.write(frame); // one write, one segment
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
