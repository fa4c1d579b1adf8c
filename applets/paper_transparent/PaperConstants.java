package cardsuite.paper.transparent;

/** The paper's file (its commands, Table 3, are cardsuite.isofs.FileApplet's); behaviour in the applet's class comment. */
public interface PaperConstants {
    short FID = (short) 0x3F01;
    short FILE_SIZE = 32;
}
