
package app;

public class MaxProcessors{
    public static void main(String[] args){
        System.out.println("Max Processors: "+Runtime.getRuntime().availableProcessors());
    }
}